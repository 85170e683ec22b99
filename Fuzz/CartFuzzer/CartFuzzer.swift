// libFuzzer target for the .cart reader (built by scripts/fuzz.sh only). Each input is decoded
// as is, and again with its lengths and checksums made consistent (so that mutations reach the
// metadata, retrieval and payload parsers instead of stopping at a checksum).
import CartridgeFormat
import Crypto
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? CartFile.decode(bytes, path: "fuzz.cart")
    _ = try? CartFile.decodeSummary(bytes, path: "fuzz.cart")
    if let sealed = resealed(bytes) {
        _ = try? CartFile.decode(sealed, path: "fuzz.cart")
    }
    return 0
}

/// `CARTRIDGES_FUZZ_SEED=FILE`: writes a small valid cartridge to FILE (the seed corpus) and exits.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    guard let path = ProcessInfo.processInfo.environment["CARTRIDGES_FUZZ_SEED"] else { return 0 }
    let (layers, kvHeads, length, headDim, dimension) = (2, 1, 4, 8, 4)
    let meta = CartridgeMetadata(
        name: "seed", model: ModelIdentity(name: "seed-model", fingerprint: String(repeating: "0123456789abcdef", count: 4)),
        layers: layers, kvHeads: kvHeads, headDim: headDim, length: length, dtype: .f16,
        rope: RoPEConvention(layout: "adjacent-pairs", base: 10000, positions: "0..<\(length)", keysRotated: true),
        tokenizerHash: String(repeating: "9", count: 64), toolVersion: "fuzz", createdAt: "2025-01-01T00:00:00Z",
        recipe: ["steps": 1], results: ["loss": 1.5],
        sources: [SourceDocument(path: "a.txt", sha256: String(repeating: "ab", count: 32), bytes: 10)],
        embeddingModel: "m", embeddingDimension: dimension,
        chunks: [RetrievalPassage(source: 0, start: 0, end: 10, preview: "hello")])
    let n = layers * kvHeads * length * headDim
    let cart = Cartridge(metadata: meta, keys: (0..<n).map { Float($0) / 8 }, values: (0..<n).map { -Float($0) / 16 },
                         retrievalVectors: (0..<dimension).map { Float($0) })
    do {
        try Data(try CartFile.encode(cart)).write(to: URL(fileURLWithPath: path))
    } catch {
        print("cannot write the seed: \(error)")
        exit(1)
    }
    exit(0)
}

/// The file with its section lengths, section checksums and header checksum recomputed
/// (layout of docs/cart-format.md), or nil when it is too short to have a header.
func resealed(_ file: [UInt8]) -> [UInt8]? {
    guard file.count >= 192 else { return nil }
    func read(_ at: Int, _ width: Int) -> Int { (0..<width).reduce(0) { $0 | Int(file[at + $1]) << (8 * $1) } }
    func write(_ v: Int, _ at: Int, _ width: Int, into h: inout [UInt8]) { for k in 0..<width { h[at + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) } }
    let h = read(12, 4)
    guard h >= 192, h <= file.count else { return nil }
    // split what follows the header in the proportions the header claims, clamped to the file
    var rest = file.count - h
    let m = min(read(64, 8) & 0xFFFF_FFFF, rest); rest -= m
    let r = min(read(72, 8) & 0xFFFF_FFFF, rest); rest -= r
    let p = rest
    var header = Array(file[0..<h])
    let metadata = Array(file[h..<(h + m)]), retrieval = Array(file[(h + m)..<(h + m + r)]), payload = Array(file[(h + m + r)...])
    write(file.count, 56, 8, into: &header)
    write(m, 64, 8, into: &header)
    write(r, 72, 8, into: &header)
    write(p, 80, 8, into: &header)
    header.replaceSubrange(96..<128, with: Array(SHA256.hash(data: metadata)))
    header.replaceSubrange(128..<160, with: Array(SHA256.hash(data: retrieval)))
    header.replaceSubrange(160..<192, with: Array(SHA256.hash(data: payload)))
    var zeroed = header
    for i in 16..<48 { zeroed[i] = 0 }
    header.replaceSubrange(16..<48, with: Array(SHA256.hash(data: zeroed)))
    return header + metadata + retrieval + payload
}
