import CartridgeKernels

extension HalfPrecision {
    /// `x` rounded to the nearest value `dtype` can hold: what a write and read give back.
    public static func rounded(_ x: Float, to dtype: TensorDType) -> Float {
        switch dtype {
        case .f32: return x
        case .f16: return float(f16: f16Bits(x))
        case .bf16: return float(bf16: bf16Bits(x))
        }
    }
}
