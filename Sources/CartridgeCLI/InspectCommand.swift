import ArgumentParser
import CartridgeFormat
import Foundation

/// `cartridge inspect FILE`: everything the header and metadata of a `.cart` file say, its sizes,
/// and whether every byte verifies (the payload is decompressed and checked too).
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a .cart file's header, metadata and sizes, and verify every byte of it.",
        discussion: "Exits with a non-zero status, the problem on stderr, when the file is damaged or not a cartridge.")

    @Argument(help: "The .cart file.") var file: String
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() throws {
        let url = URL(fileURLWithPath: file)
        let summary: CartridgeSummary
        do {
            summary = try CartFile.readSummary(from: url)
        } catch let e as CartError {
            throw CLIError(e.description)
        }
        // The full read checks the payload's checksum, the zstd frame and every tensor value.
        var problem: String?
        var tensors: (keys: Stats, values: Stats)?
        do {
            let c = try CartFile.read(from: url)
            tensors = (Stats(c.keys), Stats(c.values))
        } catch let e as CartError {
            problem = e.description
        }
        if json {
            try printJSON(jsonObject(summary, tensors: tensors, problem: problem))
        } else {
            FileHandle.standardOutput.write(Data(text(summary, tensors: tensors, problem: problem).utf8))
        }
        if let problem { throw CLIError(problem) }
    }

    /// Root mean square and largest magnitude of a tensor.
    struct Stats {
        var rms: Double
        var maxAbs: Double
        init(_ x: [Float]) {
            var sum = 0.0, m = 0.0
            for v in x {
                sum += Double(v) * Double(v)
                m = max(m, Double(abs(v)))
            }
            rms = x.isEmpty ? 0 : (sum / Double(x.count)).squareRoot()
            maxAbs = m
        }
    }

    private func ratio(_ s: CartridgeSummary) -> Double {
        s.payloadCompressedBytes == 0 ? 0 : Double(s.payloadRawBytes) / Double(s.payloadCompressedBytes)
    }

    private func text(_ s: CartridgeSummary, tensors: (keys: Stats, values: Stats)?, problem: String?) -> String {
        let h = s.header, m = s.metadata
        var out = ""
        func line(_ label: String, _ value: String) { out += label.padding(toLength: 14, withPad: " ", startingAt: 0) + value + "\n" }
        func compact(_ object: [String: JSONValue]) -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(object)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
        }
        line("file", file)
        line("format", "version \(h.majorVersion).\(h.minorVersion), header \(h.headerLength) bytes, codec \(h.codec == 1 ? "zstd" : "?") (\(h.codec)), dtype \(h.dtype.rawValue)")
        line("sizes", "file \(h.fileLength) bytes = header \(h.headerLength) + metadata \(h.metadataLength) + retrieval \(h.retrievalLength) + payload \(h.payloadLength)")
        line("payload", "\(h.payloadRawLength) bytes raw, \(h.payloadLength) compressed (ratio \(String(format: "%.2f", ratio(s)))); \(2 * (m.tensorElementCount ?? 0) * 4) bytes as f32 in memory")
        line("sha256", "header    \(h.headerSHA256)")
        line("", "metadata  \(h.metadataSHA256)")
        line("", "retrieval \(h.retrievalSHA256)")
        line("", "payload   \(h.payloadSHA256)")
        out += "\n"
        line("name", m.name)
        line("model", "\(m.model.name) (fingerprint \(m.model.fingerprint))")
        line("shape", "\(m.layers) layers × \(m.kvHeads) KV heads × \(m.length) slots × head dim \(m.headDim); \(m.frozenSlots) frozen slot\(m.frozenSlots == 1 ? "" : "s")")
        line("rope", "\(m.rope.layout), base \(m.rope.base), positions \(m.rope.positions), keys \(m.rope.keysRotated ? "stored rotated" : "not rotated")")
        line("tokenizer", m.tokenizerHash)
        line("tool", m.toolVersion)
        line("created", m.createdAt)
        line("recipe", compact(m.recipe))
        line("results", compact(m.results))
        line("sources", "\(m.sources.count)")
        for (i, d) in m.sources.enumerated() { line("", "[\(i)] \(d.path)  \(d.bytes) bytes  sha256 \(d.sha256)") }
        line("retrieval", "\(m.chunks.count) chunks × \(m.embeddingDimension) dims, embedder \(m.embeddingModel ?? "none")")
        for (i, c) in m.chunks.enumerated() {
            let preview = c.preview.replacingOccurrences(of: "\n", with: " ").prefix(60)
            line("", "[\(i)] source \(c.source) bytes \(c.start)..<\(c.end)  \"\(preview)\"")
        }
        if let t = tensors {
            line("keys", String(format: "rms %.4g, max |x| %.4g", t.keys.rms, t.keys.maxAbs))
            line("values", String(format: "rms %.4g, max |x| %.4g", t.values.rms, t.values.maxAbs))
        }
        out += "\n"
        if let problem {
            line("verification", "FAILED: \(problem)")
        } else {
            line("verification", "OK: header, metadata, retrieval and payload checksums match; the payload decompresses to the declared size; every value is finite")
        }
        return out
    }

    private func jsonObject(_ s: CartridgeSummary, tensors: (keys: Stats, values: Stats)?, problem: String?) throws -> [String: Any] {
        let h = s.header
        let encoder = JSONEncoder()
        let metadata = try JSONSerialization.jsonObject(with: encoder.encode(s.metadata))
        var object: [String: Any] = [
            "file": file,
            "header": [
                "majorVersion": h.majorVersion, "minorVersion": h.minorVersion, "headerLength": h.headerLength,
                "codec": h.codec, "dtype": h.dtype.rawValue, "fileLength": h.fileLength,
                "metadataLength": h.metadataLength, "retrievalLength": h.retrievalLength,
                "payloadLength": h.payloadLength, "payloadRawLength": h.payloadRawLength,
                "headerSHA256": h.headerSHA256, "metadataSHA256": h.metadataSHA256,
                "retrievalSHA256": h.retrievalSHA256, "payloadSHA256": h.payloadSHA256,
            ] as [String: Any],
            "metadata": metadata,
            "sizes": [
                "file": s.fileBytes, "payloadRaw": s.payloadRawBytes, "payloadCompressed": s.payloadCompressedBytes,
                "ratio": ratio(s), "f32InMemory": 2 * (s.metadata.tensorElementCount ?? 0) * 4,
            ] as [String: Any],
            "retrievalVectors": ["count": s.metadata.chunks.count, "dimension": s.metadata.embeddingDimension],
            "verified": problem == nil,
        ]
        if let t = tensors {
            object["tensors"] = ["keys": ["rms": t.keys.rms, "maxAbs": t.keys.maxAbs],
                                 "values": ["rms": t.values.rms, "maxAbs": t.values.maxAbs]]
        }
        if let problem { object["error"] = problem }
        return object
    }
}
