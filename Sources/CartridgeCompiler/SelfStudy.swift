import CartridgeKernels
import CartridgeModel
import CartridgeTraining
import Foundation

/// One synthesized conversation: agent A's question and agent B's answer, as the exact token ids
/// the model generated, with the teacher's distribution (B with the corpus window in context)
/// at every answer token.
public struct SelfStudySample: Codable, Sendable, Equatable {
    public var index: Int
    /// The number of the corpus window the conversation is about.
    public var window: Int
    public var kind: SeedKind
    public var question: [Int]
    public var answer: [Int]
    public var teacher: [TeacherTopK]

    /// Stored names: a conversation's window is `chunk` in `samples.jsonl` (its earlier name).
    enum CodingKeys: String, CodingKey {
        case index, window = "chunk", kind, question, answer, teacher
    }

    /// What makes a stored conversation unusable for training, or nil.
    func problem(vocabSize: Int) -> String? {
        let valid = 0..<vocabSize
        if let bad = (question + answer).first(where: { !valid.contains($0) }) { return "conversation \(index) holds token id \(bad), outside 0..<\(vocabSize)" }
        for row in teacher {
            if row.ids.isEmpty || row.ids.count != row.logProbs.count { return "conversation \(index) has a teacher row of \(row.ids.count) ids and \(row.logProbs.count) log-probabilities" }
            if let bad = row.ids.first(where: { !valid.contains($0) }) { return "conversation \(index) has teacher token id \(bad), outside 0..<\(vocabSize)" }
            if row.logProbs.contains(where: { $0.isNaN || $0 > 1e-3 }) { return "conversation \(index) has a teacher log-probability above 0" }
        }
        return nil
    }
}

/// Self-study: conversations about windows of the corpus, written by the frozen model itself.
///
/// For each window, the system turn `<|im_start|>system\n{window}<|im_end|>\n` is prefilled once;
/// its KV cache is copied into every conversation of the window. Agent A reads it plus a seed
/// prompt and writes a user message (sampled); agent B reads it plus A's message and answers
/// (greedy); B's full-vocabulary distribution at each answer token is kept as top-k.
public struct SelfStudy: Sendable {
    public let model: LanguageModel
    public let options: CompileOptions

    public init(model: LanguageModel, options: CompileOptions) {
        self.model = model
        self.options = options
    }

    /// Conversations to synthesize about one corpus window.
    public struct Window: Sendable {
        /// The window of the corpus.
        public var corpusWindow: CorpusWindow
        /// Its number among the compile's windows (seeds its sampling).
        public var index: Int
        /// Index of the window's first conversation (numbers them and seeds their sampling).
        public var firstIndex: Int
        public var count: Int

        public init(corpusWindow: CorpusWindow, index: Int, firstIndex: Int, count: Int) {
            self.corpusWindow = corpusWindow
            self.index = index
            self.firstIndex = firstIndex
            self.count = count
        }
    }

    /// The conversations of several windows, decoded together (one batch for the questions, one
    /// for the answers). The same windows always give the same conversations, so a batch
    /// synthesized again after an interruption is identical.
    public func conversations(windows: [Window]) throws -> [SelfStudySample] {
        let tok = model.tokenizer
        let endOfTurn = tok.encode("<|im_end|>", parseSpecial: true)[0]
        var caches: [KVCache] = [], systemLengths: [Int] = [], kinds: [SeedKind] = [], owners: [(Window, Int)] = []
        var seedTurns: [[Int]] = [], openings: [[Int]] = [], written: [[Int]?] = [], given: [[Int]?] = []
        for w in windows {
            let system = tok.encode("<|im_start|>system\n", parseSpecial: true) + w.corpusWindow.ids + tok.encode("<|im_end|>\n", parseSpecial: true)
            try model.model.checkContext(system.count, what: "a self-study window")
            let base = model.model.makeCache(capacity: system.count)
            _ = model.prefill(system, cache: base)
            let text = tok.decode(w.corpusWindow.ids)
            let sentences = Excerpts.sentences(text)
            var windowRNG = SplitMix64(seed: options.seed ^ (0xE8C3_0000 &+ UInt64(w.index) &* 0x9E37_79B9))
            let starts = Excerpts.schedule(sentences: sentences.count, conversations: w.count, rng: &windowRNG)
            // entity conversations take the window's names and numbers in seeded turns, each once before any twice
            let terms = Excerpts.keyTerms(of: sentences)
            let termOrder = Excerpts.schedule(sentences: terms.count, conversations: w.count, rng: &windowRNG)
            var entityConversations = 0
            for j in 0..<w.count {
                var kind = options.seedKinds[(w.firstIndex + j) % options.seedKinds.count]
                if kind == .entity && terms.isEmpty { kind = .recall }  // a window without names or numbers
                // the excerpt, answer and opening words of conversation i depend on the seed, its window and i only
                var rng = SplitMix64(seed: options.seed ^ (0x5EED_0000 &+ UInt64(w.firstIndex + j) &* 0x9E37_79B9))
                let excerpt = Excerpts.pick(from: sentences, fallback: text, start: starts[j], count: kind.excerptSentences)
                // agent A writes the user message after a seed turn, except for recall, whose message is cut from the window
                var seedTurn: [Int] = [], opening: [Int] = [], message: [Int]?
                if kind.isWrittenByAgentA {
                    let terms = kind.asksForAFact ? Excerpts.keyTerms(excerpt) : []
                    let term = terms.isEmpty ? nil : terms[Int(rng.next() % UInt64(terms.count))]
                    let words = kind.openings(term: term)
                    opening = tok.encode(words[Int(rng.next() % UInt64(words.count))], parseSpecial: false)
                    seedTurn = tok.encode("<|im_start|>user\n\(kind.prompt(excerpt: excerpt))<|im_end|>\n<|im_start|>assistant\n", parseSpecial: true) + opening
                } else if kind == .entity {
                    message = tok.encode(SeedKind.entityQuestion(term: terms[termOrder[entityConversations]]), parseSpecial: false)
                    entityConversations += 1
                } else {
                    message = tok.encode(kind.prompt(excerpt: excerpt), parseSpecial: false)
                }
                // a recited answer is the quoted sentence and the end of the turn
                let answer = kind == .recite ? Array(tok.encode(excerpt, parseSpecial: false).prefix(options.maxAnswerTokens - 1)) + [endOfTurn] : nil
                // the cache holds the window, then either A's turn or B's (the user turn around the
                // message is at most 16 tokens more than the message)
                let question = message?.count ?? opening.count + options.maxQuestionTokens
                let capacity = system.count + max(seedTurn.count + options.maxQuestionTokens, question + 16 + options.maxAnswerTokens)
                try model.model.checkContext(capacity, what: "a self-study conversation over a window of \(w.corpusWindow.ids.count) tokens")
                let c = model.model.makeCache(capacity: capacity)
                c.copyPrefix(from: base, count: system.count)
                caches.append(c)
                systemLengths.append(system.count)
                kinds.append(kind)
                owners.append((w, j))
                seedTurns.append(seedTurn)
                openings.append(opening)
                written.append(message)
                given.append(answer)
            }
        }
        let count = caches.count

        // agent A: the user message, started with its opening words, ended at its first "?"
        // (requests also at "."), line break or end of turn
        let asking = (0..<count).filter { written[$0] == nil }
        let sampling = asking.map { i in
            SamplingParameters(temperature: options.questionTemperature, topK: 0, topP: 0.95,
                               seed: options.seed &* 1_000_003 &+ UInt64(owners[i].0.firstIndex + owners[i].1))
        }
        var questions = written.map { $0 ?? [] }
        if !asking.isEmpty {
            let generated = try model.generateBatch(prompts: asking.map { seedTurns[$0] }, caches: asking.map { caches[$0] },
                                                    maxTokens: options.maxQuestionTokens, sampling: sampling,
                                                    finished: { s, ids in kinds[asking[s]].ends(after: tok.decode([ids.last!]), length: ids.count) })
            for (s, g) in generated.enumerated() {
                var ids = g.stopped ? Array(g.ids.dropLast()) : g.ids
                while let last = ids.last, tok.decode([last]).allSatisfy(\.isWhitespace) { ids.removeLast() }
                questions[asking[s]] = openings[asking[s]] + ids
            }
        }

        // agent B: the answer, with the teacher's distribution at every token; a greedy answer
        // that starts repeating itself is cut where the repetition starts
        for (c, n) in zip(caches, systemLengths) { c.truncate(to: n) }
        let prompts = questions.map { StudentPrompt.ids(question: $0, tokenizer: tok) }
        var teacher = [[TeacherTopK]](repeating: [], count: count)
        let vocab = model.config.vocabSize, k = options.teacherTopK, mass = options.teacherMass
        var answers = given.map { $0 ?? [] }
        let answering = (0..<count).filter { given[$0] == nil }
        var cuts = [Int?](repeating: nil, count: count)
        if !answering.isEmpty {
            let generated = try model.generateBatch(
                prompts: answering.map { prompts[$0] }, caches: answering.map { caches[$0] }, maxTokens: options.maxAnswerTokens,
                sampling: Array(repeating: .greedy, count: answering.count),
                observe: { s, logits in teacher[answering[s]].append(TeacherTopK(logits: logits, count: vocab, k: k, mass: mass)) },
                finished: { s, ids in
                    cuts[answering[s]] = repetitionStart(ids)
                    return cuts[answering[s]] != nil
                })
            for (s, g) in generated.enumerated() { answers[answering[s]] = g.ids }
        }
        // recited answers: the teacher reads the user turn and the given answer, and its
        // distribution before each answer token is recorded (a few conversations per forward, to
        // bound the logits buffer)
        let reciting = (0..<count).filter { given[$0] != nil }
        for group in stride(from: 0, to: reciting.count, by: 8).map({ Array(reciting[$0..<min(reciting.count, $0 + 8)]) }) {
            let inputs = group.map { prompts[$0] + answers[$0].dropLast() }
            let logits = model.model.forward(tokens: inputs, caches: group.map { caches[$0] }, allLogits: true)
            var row = 0
            for (i, input) in zip(group, inputs) {
                let first = row + prompts[i].count - 1  // the row that predicts the answer's first token
                teacher[i] = (0..<answers[i].count).map { t in
                    TeacherTopK(logits: logits.pointer + (first + t) * vocab, count: vocab, k: k, mass: mass)
                }
                row += input.count
            }
        }
        return (0..<count).map { i in
            let (w, j) = owners[i]
            let n = cuts[i] ?? answers[i].count
            return SelfStudySample(index: w.firstIndex + j, window: w.index, kind: kinds[i], question: questions[i],
                                   answer: Array(answers[i].prefix(n)), teacher: Array(teacher[i].prefix(n)))
        }
    }

    /// The student's view of a conversation: the student prompt (`StudentPrompt`: no BOS, no
    /// system turn, the cartridge stands in for it) and the answer; every answer token is
    /// supervised by the teacher's distribution (question tokens are context only: they were
    /// sampled, not taught). With
    /// `perConversation`, each answer token weighs 1 / (answer length), so that every conversation
    /// weighs the same in a batch whatever its length; otherwise every token weighs 1.
    public static func studentSequence(_ s: SelfStudySample, tokenizer: Tokenizer, perConversation: Bool = false) -> TrainingSequence {
        let prompt = StudentPrompt.ids(question: s.question, tokenizer: tokenizer)
        let tokens = prompt + s.answer
        var ids = [[Int]](repeating: [], count: tokens.count), lps = [[Float]](repeating: [], count: tokens.count)
        var weights = [Float](repeating: 0, count: tokens.count)
        for (j, t) in s.teacher.enumerated() where j < s.answer.count {
            // row prompt.count + j - 1 reads up to the token before answer token j
            let row = prompt.count + j - 1
            ids[row] = t.ids
            lps[row] = t.logProbs
            weights[row] = perConversation ? 1 / Float(s.answer.count) : 1
        }
        return TrainingSequence(tokens: tokens, supervision: .distillation(ids: ids, logProbs: lps, weights: weights))
    }
}
