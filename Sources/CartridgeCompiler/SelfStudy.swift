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
    /// The teacher's distribution before each question token (B reading the user turn), when the
    /// compile distils user turns; empty otherwise.
    public var questionTeacher: [TeacherTopK] = []

    public init(index: Int, window: Int, kind: SeedKind, question: [Int], answer: [Int], teacher: [TeacherTopK], questionTeacher: [TeacherTopK] = []) {
        self.index = index
        self.window = window
        self.kind = kind
        self.question = question
        self.answer = answer
        self.teacher = teacher
        self.questionTeacher = questionTeacher
    }

    /// Stored names: a conversation's window is `chunk` in `samples.jsonl` (its earlier name).
    enum CodingKeys: String, CodingKey {
        case index, window = "chunk", kind, question, answer, teacher, questionTeacher
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(index: try c.decode(Int.self, forKey: .index), window: try c.decode(Int.self, forKey: .window),
                  kind: try c.decode(SeedKind.self, forKey: .kind), question: try c.decode([Int].self, forKey: .question),
                  answer: try c.decode([Int].self, forKey: .answer), teacher: try c.decode([TeacherTopK].self, forKey: .teacher),
                  questionTeacher: try c.decodeIfPresent([TeacherTopK].self, forKey: .questionTeacher) ?? [])
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encode(window, forKey: .window)
        try c.encode(kind, forKey: .kind)
        try c.encode(question, forKey: .question)
        try c.encode(answer, forKey: .answer)
        try c.encode(teacher, forKey: .teacher)
        if !questionTeacher.isEmpty { try c.encode(questionTeacher, forKey: .questionTeacher) }
    }

    /// What makes a stored conversation unusable for training, or nil.
    func problem(vocabSize: Int) -> String? {
        let valid = 0..<vocabSize
        if let bad = (question + answer).first(where: { !valid.contains($0) }) { return "conversation \(index) holds token id \(bad), outside 0..<\(vocabSize)" }
        if !questionTeacher.isEmpty && questionTeacher.count != question.count { return "conversation \(index) has \(questionTeacher.count) teacher rows for a question of \(question.count) tokens" }
        for row in teacher + questionTeacher {
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
/// every conversation of the window continues that KV cache (shared, not copied: `KVCache.base`).
/// Agent A reads it plus a seed prompt and writes a user message (sampled). Agent B reads its
/// teacher context (the window, or the whole corpus: `TeacherContext`), prefilled once and shared
/// the same way, plus A's message, and answers (greedy); B's full-vocabulary distribution at each
/// answer token is kept as top-k.
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

    /// The corpus tokens agent B and the teacher read for a window: the window itself, or with
    /// `TeacherContext.corpus` the whole corpus when it fits the context together with a
    /// conversation, otherwise the longest span centred on the window that does.
    public func teacherSpan(of window: CorpusWindow, corpusLength n: Int) -> Range<Int> {
        let own = window.start..<(window.start + window.ids.count)
        guard options.teacherContext == .corpus else { return own }
        // the system turn's markup, the user turn around the question (with agent A's opening
        // words) and the answer
        let room = model.config.contextLength - 16 - (options.maxQuestionTokens + 48 + options.maxAnswerTokens)
        let length = max(own.count, min(n, room))
        let start = min(max(0, own.lowerBound + own.count / 2 - length / 2), n - length)
        return start..<(start + length)
    }

    /// `<|im_start|>system\n{text}<|im_end|>\n` around corpus tokens: how both agents, the teacher
    /// and the evaluation's in-context condition read a text.
    func systemTurn(_ ids: ArraySlice<Int>) -> [Int] {
        StudentPrompt.systemTurn(ids, tokenizer: model.tokenizer)
    }

    /// The conversations of several windows of `corpus`, decoded together (one batch for the
    /// questions, one for the answers). The same
    /// windows always give the same conversations, so a batch synthesized again after an
    /// interruption is identical.
    public func conversations(windows: [Window], corpus: [Int]) throws -> [SelfStudySample] {
        let tok = model.tokenizer
        let endOfTurn = tok.encode("<|im_end|>", parseSpecial: true)[0]
        var caches: [KVCache] = [], kinds: [SeedKind] = [], owners: [(Window, Int)] = [], spans: [Range<Int>] = []
        var seedTurns: [[Int]] = [], openings: [[Int]] = [], written: [[Int]?] = [], given: [[Int]?] = []
        var bases: [Range<Int>: KVCache] = [:]  // prefilled contexts, by corpus span
        for w in windows {
            let system = systemTurn(w.corpusWindow.ids[...])
            try model.model.checkContext(system.count, what: "a self-study window")
            let base = model.model.makeCache(capacity: system.count)
            _ = model.prefill(system, cache: base)
            bases[w.corpusWindow.start..<(w.corpusWindow.start + w.corpusWindow.ids.count)] = base
            let span = teacherSpan(of: w.corpusWindow, corpusLength: corpus.count)
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
                // agent A's cache continues the window's (shared, not copied) with A's turn; agent
                // B's cache is made when it answers
                if message == nil {
                    try model.model.checkContext(system.count + seedTurn.count + options.maxQuestionTokens,
                                                 what: "a self-study question over a window of \(w.corpusWindow.ids.count) tokens")
                }
                caches.append(model.model.makeCache(capacity: message == nil ? seedTurn.count + options.maxQuestionTokens : 1, continuing: base))
                kinds.append(kind)
                owners.append((w, j))
                spans.append(span)
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

        // agent B: the answer, reading its teacher context (prefilled once and shared by its
        // conversations), with the teacher's distribution at every token
        let prompts = questions.map { StudentPrompt.ids(question: $0, tokenizer: tok) }
        var teacher = [[TeacherTopK]](repeating: [], count: count), questionTeacher = teacher
        var answers = given.map { $0 ?? [] }
        var cuts = [Int?](repeating: nil, count: count)
        for span in Set(spans).sorted(by: { ($0.lowerBound, $0.upperBound) < ($1.lowerBound, $1.upperBound) }) where bases[span] == nil {
            let system = systemTurn(corpus[span])
            try model.model.checkContext(system.count, what: "a teacher context of \(span.count) tokens")
            let base = model.model.makeCache(capacity: system.count)
            _ = model.prefill(system, cache: base)
            bases[span] = base
        }
        let answerCaches = try (0..<count).map { i -> KVCache in
            let base = bases[spans[i]]!, own = prompts[i].count + options.maxAnswerTokens
            try model.model.checkContext(base.count + own, what: "a self-study answer over a teacher context of \(spans[i].count) tokens")
            return model.model.makeCache(capacity: own, continuing: base)
        }
        try answer(caches: answerCaches, prompts: prompts, kinds: kinds, given: given,
                   answers: &answers, teacher: &teacher, questionTeacher: &questionTeacher, cuts: &cuts)
        return (0..<count).map { i in
            let (w, j) = owners[i]
            let n = cuts[i] ?? answers[i].count
            return SelfStudySample(index: w.firstIndex + j, window: w.index, kind: kinds[i], question: questions[i],
                                   answer: Array(answers[i].prefix(n)), teacher: Array(teacher[i].prefix(n)), questionTeacher: questionTeacher[i])
        }
    }

    /// The weight of a conversation's user turn in the loss, relative to an answer token's.
    func userTurnWeight(_ kind: SeedKind) -> Float {
        kind.isWrittenByAgentA ? options.writtenTurnWeight : options.corpusTurnWeight
    }

    /// Agent B's answers to every conversation (`caches[i]` continues conversation i's teacher
    /// context): greedy answers, cut where a repetition starts, or the given
    /// (recited) answers read teacher-forced; the teacher's distribution before each answer token,
    /// and before each question token when the user turn is distilled.
    func answer(caches: [KVCache], prompts: [[Int]], kinds: [SeedKind], given: [[Int]?],
                answers: inout [[Int]], teacher: inout [[TeacherTopK]], questionTeacher: inout [[TeacherTopK]], cuts: inout [Int?]) throws {
        let vocab = model.config.vocabSize, k = options.teacherTopK, mass = options.teacherMass
        // row u + i - 1 of a prompt predicts question token i
        let u = model.tokenizer.encode("<|im_start|>user\n", parseSpecial: true).count
        let markup = StudentPrompt.ids(question: [], tokenizer: model.tokenizer).count
        func questionRows(_ logits: UnsafePointer<Float>, conversation i: Int) -> [TeacherTopK] {
            let n = prompts[i].count - markup
            return (0..<n).map { TeacherTopK(logits: logits + (u + $0 - 1) * vocab, count: vocab, k: k, mass: mass) }
        }
        // teacher-forced reads, a few conversations per forward to bound the logits buffer; the
        // cache then holds what was read
        func read(_ members: [Int], inputs: (Int) -> [Int], each: (Int, UnsafePointer<Float>) -> Void) {
            for part in stride(from: 0, to: members.count, by: 8).map({ Array(members[$0..<min(members.count, $0 + 8)]) }) {
                let ins = part.map(inputs)
                let logits = model.model.forward(tokens: ins, caches: part.map { caches[$0] }, allLogits: true)
                var row = 0
                for (s, input) in zip(part, ins) {
                    each(s, logits.pointer + row * vocab)
                    row += input.count
                }
            }
        }
        let answering = caches.indices.filter { given[$0] == nil }
        if !answering.isEmpty {
            // a distilled user turn is read teacher-forced first, all but its last token
            let distilled = answering.filter { userTurnWeight(kinds[$0]) > 0 }
            read(distilled, inputs: { Array(prompts[$0].dropLast()) }) { s, logits in
                questionTeacher[s] = questionRows(logits, conversation: s)
            }
            let rest = answering.map { s in userTurnWeight(kinds[s]) > 0 ? [prompts[s].last!] : prompts[s] }
            var rows = [[TeacherTopK]](repeating: [], count: answering.count), found = [Int?](repeating: nil, count: answering.count)
            let generated = try model.generateBatch(
                prompts: rest, caches: answering.map { caches[$0] }, maxTokens: options.maxAnswerTokens,
                sampling: Array(repeating: .greedy, count: answering.count),
                observe: { s, logits in rows[s].append(TeacherTopK(logits: logits, count: vocab, k: k, mass: mass)) },
                finished: { s, ids in
                    found[s] = repetitionStart(ids)
                    return found[s] != nil
                })
            for (s, g) in generated.enumerated() {
                let i = answering[s]
                answers[i] = g.ids
                teacher[i] = rows[s]
                cuts[i] = found[s]
            }
        }
        // recited answers: the teacher reads the user turn and the given answer, and its
        // distribution before each answer token is recorded
        let reciting = caches.indices.filter { given[$0] != nil }
        read(reciting, inputs: { prompts[$0] + answers[$0].dropLast() }) { s, logits in
            let i = s
            let first = prompts[i].count - 1  // the row that predicts the answer's first token
            teacher[i] = (0..<answers[i].count).map { t in TeacherTopK(logits: logits + (first + t) * vocab, count: vocab, k: k, mass: mass) }
            if userTurnWeight(kinds[i]) > 0 { questionTeacher[i] = questionRows(logits, conversation: i) }
        }
    }

    /// The student's view of a conversation: the student prompt (`StudentPrompt`: no BOS, no
    /// system turn, the cartridge stands in for it) and the answer; every answer token is
    /// supervised by the teacher's distribution, and with `questionWeight` > 0 every question
    /// token too (with that weight relative to an answer token; otherwise the question is context
    /// only: it was sampled, not taught). With `perConversation`, each answer token weighs
    /// 1 / (answer length), so that every conversation weighs the same in a batch whatever its
    /// length; otherwise every token weighs 1.
    public static func studentSequence(_ s: SelfStudySample, tokenizer: Tokenizer, perConversation: Bool = false,
                                       questionWeight: Float = 0) -> TrainingSequence {
        let prompt = StudentPrompt.ids(question: s.question, tokenizer: tokenizer)
        let tokens = prompt + s.answer
        var ids = [[Int]](repeating: [], count: tokens.count), lps = [[Float]](repeating: [], count: tokens.count)
        var weights = [Float](repeating: 0, count: tokens.count)
        let unit: Float = perConversation ? 1 / Float(max(1, s.answer.count)) : 1
        for (j, t) in s.teacher.enumerated() where j < s.answer.count {
            // row prompt.count + j - 1 reads up to the token before answer token j
            let row = prompt.count + j - 1
            ids[row] = t.ids
            lps[row] = t.logProbs
            weights[row] = unit
        }
        if questionWeight > 0 {
            // row u + i - 1 reads up to the token before question token i
            let u = tokenizer.encode("<|im_start|>user\n", parseSpecial: true).count
            for (i, t) in s.questionTeacher.enumerated() where i < s.question.count {
                ids[u + i - 1] = t.ids
                lps[u + i - 1] = t.logProbs
                weights[u + i - 1] = questionWeight * unit
            }
        }
        return TrainingSequence(tokens: tokens, supervision: .distillation(ids: ids, logProbs: lps, weights: weights))
    }
}
