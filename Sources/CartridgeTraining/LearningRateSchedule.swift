import Foundation

/// How the learning rate moves over a run of `steps` optimizer steps.
public enum LearningRateSchedule: String, Codable, Sendable, CaseIterable {
    /// The same rate at every step.
    case constant
    /// Half a cosine from the rate down to `floor` times the rate at the last step, so the
    /// last steps make small moves and the result does not ride on the last few batches.
    case cosine

    /// Fraction of the peak rate that the cosine ends at.
    public static let floor: Float = 0.1

    /// The rate of step `step` (0-based) of `steps`, from the peak rate `peak`.
    public func rate(peak: Float, step: Int, steps: Int) -> Float {
        switch self {
        case .constant:
            return peak
        case .cosine:
            guard steps > 1 else { return peak }
            let t = Float(min(max(step, 0), steps - 1)) / Float(steps - 1)
            return peak * (Self.floor + (1 - Self.floor) * 0.5 * (1 + cos(Float.pi * t)))
        }
    }
}
