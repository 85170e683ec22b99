import ArgumentParser
import CartridgeFormat
import Foundation

/// `cartridge convert IN.cart -o OUT.cart --dtype q8_0`: the same cartridge with its tensors stored
/// in another dtype, with the bytes it saves and the error it costs.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Rewrite a .cart file with its tensors in another dtype; print the sizes and the reconstruction error.",
        discussion: """
            The output is written atomically and read back; the error is the difference between the tensors it \
            holds and those of the input (RMS and largest absolute value, keys and values apart). The output \
            must be another file than the input: to replace the input, convert to a new file and rename it.
            """)

    @Argument(help: "The .cart file to convert.") var input: String
    @Option(name: .shortAndLong, help: "Output .cart file (not the input).") var output: String
    @Option(help: ArgumentHelp("Tensor dtype of the output: \(TensorDType.choices).")) var dtype: String

    func run() throws {
        guard let dt = TensorDType(rawValue: dtype) else { throw ValidationError("--dtype must be \(TensorDType.choices), not '\(dtype)'") }
        guard output.hasSuffix(".cart") else { throw ValidationError("--output must end in .cart") }
        guard !Self.sameFile(input, output) else {
            throw ValidationError("--output \(output) is the input file; convert to another path (then rename it over the input if you want to replace it)")
        }
        let inURL = URL(fileURLWithPath: input), outURL = URL(fileURLWithPath: output)
        do {
            let before = try CartFile.read(from: inURL)
            try CartFile.write(before, to: outURL, dtype: dt)
            let after = try CartFile.read(from: outURL)
            let oldBytes = try CartFile.readSummary(from: inURL).fileBytes
            let newBytes = try CartFile.readSummary(from: outURL).fileBytes
            var out = "converted \(input) (\(before.metadata.dtype.rawValue)) to \(output) (\(dt.rawValue))\n"
            out += "bytes   \(oldBytes) -> \(newBytes) (\(String(format: "%.1f", 100 * Double(newBytes) / Double(max(1, oldBytes))))% of the input)\n"
            for (name, old, new) in [("keys", before.keys, after.keys), ("values", before.values, after.values)] {
                let error = InspectCommand.Stats(zip(new, old).map { $0 - $1 })
                out += name.padding(toLength: 8, withPad: " ", startingAt: 0)
                    + String(format: "RMS error %.4g, max |error| %.4g (RMS of the %@ %.4g)\n", error.rms, error.maxAbs, name, InspectCommand.Stats(old).rms)
            }
            FileHandle.standardOutput.write(Data(out.utf8))
        } catch let e as CartError {
            throw CLIError(e.description)
        }
    }

    /// Whether `a` and `b` name one existing file (same device and inode, so links and other
    /// spellings of the path count too).
    static func sameFile(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }
}
