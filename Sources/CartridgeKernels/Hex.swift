/// Lower-case hexadecimal text of bytes: SHA-256 digests in cartridge headers and metadata, model
/// fingerprints, document hashes.
public enum Hex {
    private static let digits: [Character] = Array("0123456789abcdef")

    /// Two lower-case hexadecimal digits per byte, in order.
    public static func string<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = ""
        s.reserveCapacity(bytes.underestimatedCount * 2)
        for b in bytes {
            s.append(digits[Int(b >> 4)])
            s.append(digits[Int(b & 15)])
        }
        return s
    }
}
