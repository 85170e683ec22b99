/// A part of a `.cart` file that has its own checksum.
public enum CartSection: String, Sendable, Equatable, CaseIterable {
    case header
    case metadata
    case retrieval = "retrieval vectors"
    case payload = "tensor payload"
}

/// Everything that can go wrong reading or writing a `.cart` file. Each message says what is
/// wrong and what to do about it.
public enum CartError: Error, CustomStringConvertible, Equatable {
    /// The file does not start with the `.cart` magic bytes.
    case notACartridge(path: String)
    /// The file is shorter than its header (or the magic) says it must be.
    case truncated(path: String, expectedBytes: Int, actualBytes: Int)
    /// The file is longer than its header says.
    case trailingBytes(path: String, expectedBytes: Int, actualBytes: Int)
    /// A header field that cannot be right (the header checksum could not be checked, or it
    /// matched but a field is out of range).
    case corruptHeader(path: String, reason: String)
    /// The header's SHA-256 does not match its bytes.
    case headerChecksumMismatch(path: String)
    /// A section's SHA-256 does not match its bytes.
    case checksumMismatch(path: String, section: CartSection)
    /// The file's major format version is not one this build reads.
    case unsupportedVersion(found: Int, supported: Int)
    /// The payload codec is unknown (only 1 = zstd exists).
    case unsupportedCodec(path: String, code: Int)
    /// The tensor dtype code is unknown.
    case unsupportedDType(path: String, code: Int)
    /// The metadata JSON is not valid or not consistent.
    case corruptMetadata(path: String, reason: String)
    /// The retrieval block does not match the metadata.
    case corruptRetrieval(path: String, reason: String)
    /// The tensor payload cannot be decompressed or holds impossible values.
    case corruptPayload(path: String, reason: String)
    /// An array has the wrong number of elements.
    case shapeMismatch(what: String, expected: Int, found: Int)
    /// The cartridge was trained for another model.
    case wrongModel(cartridge: ModelIdentity, expected: ModelIdentity)
    /// The cartridge given to the writer is not sound.
    case invalidCartridge(reason: String)
    /// The operating system refused a read or write.
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case let .notACartridge(path):
            return "\(path) is not a cartridge (.cart file): it does not start with the cartridge magic bytes"
        case let .truncated(path, expected, actual):
            return "\(path) is truncated: it has \(actual) bytes but needs \(expected); copy or write it again"
        case let .trailingBytes(path, expected, actual):
            return "\(path) has \(actual - expected) unexpected bytes after its end (\(actual) bytes, header says \(expected)); the file is damaged, write it again"
        case let .corruptHeader(path, reason):
            return "\(path) has a corrupt header: \(reason); the file is damaged, write it again"
        case let .headerChecksumMismatch(path):
            return "\(path) has a corrupt header: its SHA-256 checksum does not match; the file is damaged, write it again"
        case let .checksumMismatch(path, section):
            return "\(path) is corrupt: the SHA-256 checksum of its \(section.rawValue) does not match; the file is damaged, write it again"
        case let .unsupportedVersion(found, supported):
            return "the cartridge uses format version \(found), but this build reads version \(supported) only; update the cartridge tools (or write the cartridge again with this version)"
        case let .unsupportedCodec(path, code):
            return "\(path) uses payload codec \(code), which this build does not know (1 = zstd is the only codec); update the cartridge tools"
        case let .unsupportedDType(path, code):
            return "\(path) uses tensor dtype code \(code), which this build does not know (1 = f32, 2 = f16, 3 = bf16, 4 = q8_0, 5 = q4_0); update the cartridge tools"
        case let .corruptMetadata(path, reason):
            return "\(path) has invalid metadata: \(reason)"
        case let .corruptRetrieval(path, reason):
            return "\(path) has invalid retrieval vectors: \(reason)"
        case let .corruptPayload(path, reason):
            return "\(path) has an invalid tensor payload: \(reason)"
        case let .shapeMismatch(what, expected, found):
            return "\(what): expected \(expected) elements, found \(found)"
        case let .wrongModel(cartridge, expected):
            return "the cartridge was trained for model \(cartridge.name) (fingerprint \(cartridge.shortFingerprint)), "
                + "but the loaded model is \(expected.name) (fingerprint \(expected.shortFingerprint)); "
                + "load it with the model it was trained for, or train a cartridge for \(expected.name)"
        case let .invalidCartridge(reason):
            return "cannot write the cartridge: \(reason)"
        case let .io(path, reason):
            return "\(path): \(reason)"
        }
    }
}
