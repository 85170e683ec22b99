import CartridgeKernels
import CartridgeModel
import CartridgeTraining

/// The teacher's hidden states over training sequences, for deep context distillation
/// (`CompileOptions.hiddenStateWeight`): each student sequence read after its teacher context
/// (the corpus span agent B read, `SelfStudy.teacherSpan`) instead of the cartridge, keeping the
/// residual stream after every layer. A span's context is prefilled once and shared by every
/// sequence over it (`KVCache.base`), so a step costs one forward of its batch's own tokens.
final class TeacherHiddenStates {
    let model: LanguageModel
    let corpus: [Int]
    let weight: Float
    /// Prefilled teacher contexts, by corpus span (one for a corpus that fits the context).
    private var contexts: [Range<Int>: KVCache] = [:]

    init(model: LanguageModel, corpus: [Int], weight: Float) {
        self.model = model
        self.corpus = corpus
        self.weight = weight
    }

    /// (layers, R, D) teacher states of `sequences` (their rows packed in order, as the trainer
    /// packs a batch), sequence i read after the system turn holding `corpus[spans[i]]`.
    func targets(sequences: [TrainingSequence], spans: [Range<Int>]) throws -> HiddenStateTargets {
        invariant(sequences.count == spans.count && !sequences.isEmpty)
        let c = model.config, dim = c.dim
        let rows = sequences.reduce(0) { $0 + $1.tokens.count }
        let states = FloatBuffer(count: c.layers * rows * dim)
        let caches = try zip(sequences, spans).map { sequence, span -> KVCache in
            let base = try context(span)
            try model.model.checkContext(base.count + sequence.tokens.count,
                                         what: "a training sequence of \(sequence.tokens.count) tokens after a teacher context of \(span.count) tokens")
            return model.model.makeCache(capacity: sequence.tokens.count, continuing: base)
        }
        // the residual stream at layer l's input (l >= 1) is layer l-1's output
        _ = model.model.forward(tokens: sequences.map(\.tokens), caches: caches) { layer, x in
            guard layer > 0 else { return }
            (states.pointer + (layer - 1) * rows * dim).update(from: x, count: rows * dim)
        }
        return HiddenStateTargets(weight: weight, states: states)
    }

    private func context(_ span: Range<Int>) throws -> KVCache {
        if let cached = contexts[span] { return cached }
        let system = StudentPrompt.systemTurn(corpus[span], tokenizer: model.tokenizer)
        try model.model.checkContext(system.count, what: "a teacher context of \(span.count) tokens")
        let cache = model.model.makeCache(capacity: system.count)
        _ = model.prefill(system, cache: cache)
        contexts[span] = cache
        return cache
    }
}
