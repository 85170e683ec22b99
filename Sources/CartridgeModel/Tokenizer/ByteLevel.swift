/// GPT-2's byte-level alphabet: a reversible mapping between the 256 byte values and 256
/// printable Unicode scalars, which lets a byte-level BPE vocabulary be stored as text.
///
/// Bytes that are printable Latin-1 characters (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) stand for
/// themselves. The other 68 bytes (controls, space, DEL, NBSP, soft hyphen, …) map in
/// increasing order to U+0100, U+0101, …, U+0143. So the space 0x20 is `Ġ` (U+0120) and the
/// newline 0x0A is `Ċ` (U+010A).
public enum ByteLevel {
    /// `scalarValue[b]` is the scalar value that stands for byte `b`.
    public static let scalarValue: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var nextExtra: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(byte) {
                table[byte] = UInt32(byte)
            } else {
                table[byte] = nextExtra
                nextExtra += 1
            }
        }
        return table
    }()

    /// Inverse of `scalarValue`, indexed by scalar value (all of them are below 0x144);
    /// -1 where a scalar does not stand for any byte.
    private static let byteForScalarValue: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for byte in 0..<256 {
            table[Int(scalarValue[byte])] = Int16(byte)
        }
        return table
    }()

    private static func isPrintable(_ byte: Int) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    /// The byte that `scalar` stands for, or nil if the scalar is not part of the alphabet.
    public static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        byte(forScalarValue: scalar.value)
    }

    /// The byte that the scalar value `value` stands for, or nil if it is not part of the alphabet.
    public static func byte(forScalarValue value: UInt32) -> UInt8? {
        guard value < UInt32(byteForScalarValue.count) else { return nil }
        let byte = byteForScalarValue[Int(value)]
        return byte < 0 ? nil : UInt8(byte)
    }

    /// Encodes raw bytes as byte-level text, one scalar per byte (e.g. `" hi"` → `"Ġhi"`).
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var scalars = String.UnicodeScalarView()
        for byte in bytes {
            if let scalar = Unicode.Scalar(scalarValue[Int(byte)]) {
                scalars.append(scalar)
            }
        }
        return String(scalars)
    }

    /// Decodes byte-level text back to raw bytes, or returns nil if `text` contains a scalar
    /// outside the alphabet.
    public static func decode(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            guard let byte = byte(for: scalar) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
