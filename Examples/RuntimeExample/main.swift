// A minimal program embedding CartridgeRuntime: open the default model, open a folder of
// cartridges, retrieve the best one for a question, and stream an answer with it.
//
//   swift run -c release runtime-example cartridges "What are the first bytes of a .cart file?"
import CartridgeKernels
import CartridgeModel
import CartridgeRuntime
import Foundation

OpenBLASSetup.reexecWithFastKernelsIfNeeded()  // fast BLAS kernels on CPUs Debian's OpenBLAS misdetects
let args = CommandLine.arguments
guard args.count == 3 else {
    FileHandle.standardError.write(Data("usage: runtime-example CARTRIDGE_DIR QUESTION\n".utf8))
    exit(2)
}
do {
    let runtime = try CartridgeRuntime(model: LanguageModel())        // the cached default model
    let library = try runtime.openLibrary(URL(fileURLWithPath: args[1]))  // metadata + vectors; tensors load lazily
    let matches = try runtime.retrieve(args[2], in: library, k: 1)
    for m in matches { print("[\(m.entry.name), score \(m.score)]") }
    let cartridges = try matches.map { try library.load($0.entry) }
    _ = try runtime.answer(args[2], with: cartridges, maxTokens: 128) { _, piece in
        FileHandle.standardOutput.write(Data(piece.utf8))
        return true
    }
    print()
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
