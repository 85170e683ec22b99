@testable import CartridgeCompiler
import CartridgeFormat
import CartridgeModel
import CartridgeTestSupport
import CartridgeTraining
import Foundation
import XCTest

final class SelfStudyDataTests: XCTestCase {
    func testWindowsAreSeededSlicesOfTheCorpusWithinTheLengthRange() {
        let tokens = Array(1000..<3000)
        let a = WindowSampler.windows(tokens: tokens, count: 50, minTokens: 64, maxTokens: 300, seed: 7)
        XCTAssertEqual(a, WindowSampler.windows(tokens: tokens, count: 50, minTokens: 64, maxTokens: 300, seed: 7))
        XCTAssertNotEqual(a, WindowSampler.windows(tokens: tokens, count: 50, minTokens: 64, maxTokens: 300, seed: 8))
        for c in a {
            XCTAssertTrue((64...300).contains(c.ids.count))
            XCTAssertEqual(c.ids, Array(tokens[c.start..<(c.start + c.ids.count)]))
        }
        XCTAssertGreaterThan(Set(a.map(\.ids.count)).count, 10, "lengths vary")
    }

    func testWindowsCoverTheCorpusEdgesNearlyAsOftenAsItsMiddle() {
        // an essay-sized corpus with windows up to 3/4 of it: uniform starts over the valid range
        // would put token 0 in about 0.2% of the windows (expected here: 33%, middle 65%)
        let tokens = Array(0..<1000)
        let windows = WindowSampler.windows(tokens: tokens, count: 2000, minTokens: 256, maxTokens: 768, seed: 3)
        func share(_ t: Int) -> Double { Double(windows.filter { $0.start <= t && t < $0.start + $0.ids.count }.count) / 2000 }
        for t in [0, 50, 949, 999] { XCTAssertGreaterThan(share(t), 0.28, "token \(t)") }
        XCTAssertLessThan(share(500), 0.72)
        XCTAssertGreaterThan(share(500), 0.58)
    }

    func testAShortCorpusGivesWholeCorpusWindows() {
        let c = WindowSampler.windows(tokens: [1, 2, 3], count: 2, minTokens: 64, maxTokens: 128, seed: 0)
        XCTAssertEqual(c.map(\.ids), [[1, 2, 3], [1, 2, 3]])
    }

    func testStudentSequenceSupervisesEveryAnswerTokenFromThePreviousRow() throws {
        let tok = try TestResources.model().tokenizer
        let sample = SelfStudySample(index: 0, window: 0, kind: .question, question: [100, 101], answer: [7, 8, 2],
                                     teacher: [TeacherTopK(ids: [7, 9], logProbs: [-0.1, -3]), TeacherTopK(ids: [8], logProbs: [-0.01]),
                                               TeacherTopK(ids: [2], logProbs: [-0.2])])
        let seq = SelfStudy.studentSequence(sample, tokenizer: tok)
        let prompt = StudentPrompt.ids(question: [100, 101], tokenizer: tok)
        XCTAssertEqual(seq.tokens, prompt + [7, 8, 2])
        XCTAssertEqual(prompt.first, tok.id(forToken: "<|im_start|>"), "no BOS, no system turn")
        guard case let .distillation(ids, _, weights) = seq.supervision else { return XCTFail("expected distillation") }
        XCTAssertEqual(weights.enumerated().filter { $0.element > 0 }.map(\.offset), [prompt.count - 1, prompt.count, prompt.count + 1])
        XCTAssertEqual(ids[prompt.count - 1], [7, 9])
    }

    func testADistilledUserTurnSupervisesEachQuestionTokenFromThePreviousRowWithItsWeight() throws {
        let tok = try TestResources.model().tokenizer
        let sample = SelfStudySample(index: 0, window: 0, kind: .question, question: [100, 101], answer: [7, 2],
                                     teacher: [TeacherTopK(ids: [7], logProbs: [-0.1]), TeacherTopK(ids: [2], logProbs: [-0.2])],
                                     questionTeacher: [TeacherTopK(ids: [100, 5], logProbs: [-0.5, -1]), TeacherTopK(ids: [101], logProbs: [-0.3])])
        let prompt = StudentPrompt.ids(question: [100, 101], tokenizer: tok)
        let u = tok.encode("<|im_start|>user\n", parseSpecial: true).count
        XCTAssertEqual(Array(prompt[u..<(u + 2)]), [100, 101])
        guard case let .distillation(ids, _, weights) = SelfStudy.studentSequence(sample, tokenizer: tok, questionWeight: 0.5).supervision,
              case let .distillation(_, _, answerOnly) = SelfStudy.studentSequence(sample, tokenizer: tok).supervision
        else { return XCTFail("expected distillation") }
        XCTAssertEqual(weights.enumerated().filter { $0.element > 0 }.map(\.offset), [u - 1, u, prompt.count - 1, prompt.count])
        XCTAssertEqual(Array(weights[(u - 1)...u]), [0.5, 0.5])
        XCTAssertEqual(ids[u - 1], [100, 5])
        XCTAssertEqual(ids[u], [101])
        XCTAssertEqual(answerOnly.enumerated().filter { $0.element > 0 }.map(\.offset), [prompt.count - 1, prompt.count], "weight 0: context only")
    }

    func testPerConversationWeightingGivesEveryAnswerTheSameTotalWeight() throws {
        let tok = try TestResources.model().tokenizer
        func sample(_ answer: [Int]) -> SelfStudySample {
            SelfStudySample(index: 0, window: 0, kind: .recall, question: [100], answer: answer,
                            teacher: answer.map { TeacherTopK(ids: [$0], logProbs: [-0.1]) })
        }
        for answer in [[7], [7, 8, 9, 10]] {
            guard case let .distillation(_, _, perToken) = SelfStudy.studentSequence(sample(answer), tokenizer: tok).supervision,
                  case let .distillation(_, _, perConversation) = SelfStudy.studentSequence(sample(answer), tokenizer: tok, perConversation: true).supervision
            else { return XCTFail("expected distillation") }
            XCTAssertEqual(perToken.reduce(0, +), Float(answer.count), "token weighting: one per answer token")
            XCTAssertEqual(perConversation.reduce(0, +), 1, accuracy: 1e-6, "conversation weighting: one per answer")
            XCTAssertEqual(perConversation.map { $0 > 0 }, perToken.map { $0 > 0 }, "the same rows are supervised")
        }
    }

    func testEveryStepBatchIsDeterministicAndEachEpochCoversTheData() {
        let data = (0..<10).map { TrainingSequence.nextToken([$0, $0 + 1]) }
        var seen: [[Int]] = []
        for step in 0..<5 { seen += TrainingLoop.batch(step: step, of: data, size: 2, seed: 3).map(\.tokens) }
        XCTAssertEqual(Set(seen.map { $0[0] }), Set(0..<10), "one epoch of 5 steps x 2 covers all 10")
        XCTAssertEqual(TrainingLoop.batch(step: 7, of: data, size: 2, seed: 3), TrainingLoop.batch(step: 7, of: data, size: 2, seed: 3))
    }

    func testEverySettingOutOfRangeIsAProblemNamingItsOption() {
        XCTAssertEqual(CompileOptions.quick.validate(), [])
        // (option, a bad value): each one alone gives exactly one problem, about that option
        let cases: [(String, (inout CompileOptions) -> Void)] = [
            ("size", { $0.size = 1 }), ("samples", { $0.samples = 1 }), ("samples", { $0.samples = 1 << 40 }),
            ("conversationsPerWindow", { $0.conversationsPerWindow = 0 }), ("windowsPerBatch", { $0.windowsPerBatch = 5000 }),
            ("windowMinTokens", { $0.windowMinTokens = 0 }), ("windowMaxTokens", { $0.windowMaxTokens = 100 }),
            ("maxQuestionTokens", { $0.maxQuestionTokens = 0 }), ("maxAnswerTokens", { $0.maxAnswerTokens = 0 }),  // 0 once corrupted memory
            ("seedKinds", { $0.seedKinds = [] }), ("questionTemperature", { $0.questionTemperature = -1 }),
            ("teacherTopK", { $0.teacherTopK = 0 }), ("teacherMass", { $0.teacherMass = 0 }),
            ("steps", { $0.steps = -1 }), ("steps", { $0.steps = CompileOptions.maxSteps + 1 }), ("batchSize", { $0.batchSize = 0 }),
            ("learningRate", { $0.learningRate = .nan }), ("validationFraction", { $0.validationFraction = 0.95 }),
            ("nextTokenWindow", { $0.nextTokenWindow = 1 }), ("checkpointEvery", { $0.checkpointEvery = 0 }),
        ]
        for (option, spoil) in cases {
            var o = CompileOptions()
            spoil(&o)
            XCTAssertEqual(o.validate().map(\.option), [option])
            XCTAssertTrue(o.validate().first!.description.hasPrefix("\(option) must be"), o.validate().first!.description)
        }
    }

    func testAnAnchorThatWouldOvershootTheInitializationIsRefused() {
        XCTAssertEqual(CompileOptions().validate(), [])
        for (lr, anchor): (Float, Float) in [(0.005, -1), (0.01, 100), (0.5, 2)] {
            var o = CompileOptions()
            o.learningRate = lr
            o.anchor = anchor
            XCTAssertEqual(o.validate().map(\.option), ["anchor"], "lr \(lr), anchor \(anchor)")
        }
        var free = CompileOptions()
        free.anchor = 0
        XCTAssertEqual(free.validate(), [])
        var keys = CompileOptions()
        keys.keyAnchor = 60  // lr 0.02: the pull would overshoot
        XCTAssertEqual(keys.validate().map(\.option), ["keyAnchor"])
        keys.keyAnchor = 10
        XCTAssertEqual(keys.validate(), [])
    }

    func testAKeyAnchorIsStoredOnlyWhenSetSoEarlierWorkDirectoriesResume() throws {
        let plain = try JSONEncoder().encode(CompileOptions())
        XCTAssertFalse(String(decoding: plain, as: UTF8.self).contains("keyAnchor"))
        XCTAssertNil(try JSONDecoder().decode(CompileOptions.self, from: plain).keyAnchor)
        var o = CompileOptions()
        o.keyAnchor = 10
        XCTAssertEqual(try JSONDecoder().decode(CompileOptions.self, from: JSONEncoder().encode(o)), o)
    }
}

/// Tiny real compiles through the executable: killed with SIGKILL and run again, or run again
/// with more steps, they must finish from the work directory and produce the same cartridge as
/// an uninterrupted run.
final class ResumeTests: XCTestCase {
    var dir: URL!, docs: URL!

    override func setUpWithError() throws {
        _ = try TestResources.model()
        (dir, docs) = try Self.corpus("compile-resume")
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    /// A new folder holding `docs/lighthouse.txt`, the tiny corpus; returns (folder, docs).
    static func corpus(_ label: String) throws -> (URL, URL) {
        let dir = try TestResources.temporaryDirectory(label), docs = dir.appendingPathComponent("docs")
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        try "The lighthouse on Skerry Point was built in 1871 by Anna Lind. Its lamp burns whale oil and can be seen for 18 nautical miles. The keeper, Tomas Berg, keeps a red logbook of every ship that passes."
            .write(to: docs.appendingPathComponent("lighthouse.txt"), atomically: true, encoding: .utf8)
        return (dir, docs)
    }

    /// One uninterrupted 6-step compile of the corpus, made once per test process for the tests
    /// that compare with it.
    private static let uninterrupted: Result<URL, Error> = Result {
        let (dir, docs) = try corpus("compile-reference")
        let out = dir.appendingPathComponent("reference.cart")
        let r = try compile(docs: docs, to: out)
        guard r.status == 0 else { throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "reference compile failed: \(r.stderr)"]) }
        return out
    }

    func uninterruptedCompile() throws -> URL { try Self.uninterrupted.get() }

    /// Runs the tiny compile to `out`; `killAfter` is polled and the process killed once it holds.
    func run(_ out: URL, steps: Int = 6, extra: [String] = [], killAfter: ((URL) -> Bool)? = nil) throws -> (status: Int32, stderr: String) {
        try Self.compile(docs: docs, to: out, steps: steps, extra: extra, killAfter: killAfter)
    }

    static func compile(docs: URL, to out: URL, steps: Int = 6, extra: [String] = [], killAfter: ((URL) -> Bool)? = nil) throws -> (status: Int32, stderr: String) {
        let args = ["--size", "24", "--samples", "6", "--per-chunk", "2", "--chunks-per-batch", "1", "--steps", "\(steps)", "--batch-size", "2", "--checkpoint-every", "1",
                    "--chunk-min", "32", "--chunk-max", "48", "--max-answer", "12", "--validation", "0.34", "--dtype", "f32", "--seed", "5"]
        let p = Process()
        p.executableURL = try TestResources.executable("cartridge-compile")
        p.arguments = [docs.path, "-o", out.path] + args + extra
        let err = out.deletingLastPathComponent().appendingPathComponent("stderr-\(UUID().uuidString).txt")
        FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        if let cond = killAfter {
            let work = Compiler.defaultWorkDirectory(for: out)
            let deadline = Date().addingTimeInterval(300)
            while p.isRunning && !cond(work) && Date() < deadline { usleep(20_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    func assertSameCartridge(_ reference: URL, _ other: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let a = try CartFile.read(from: reference), b = try CartFile.read(from: other)
        XCTAssertEqual(a.keys.map(\.bitPattern), b.keys.map(\.bitPattern), "keys differ from an uninterrupted compile", file: file, line: line)
        XCTAssertEqual(a.values.map(\.bitPattern), b.values.map(\.bitPattern), file: file, line: line)
        XCTAssertEqual(a.metadata.results["final_loss"], b.metadata.results["final_loss"], file: file, line: line)
    }

    func testAKilledCompileResumesAndMatchesAnUninterruptedOne() throws {
        let reference = try uninterruptedCompile()
        // killed during synthesis (after the first group is durable), then during training
        let resumed = dir.appendingPathComponent("resumed.cart")
        _ = try run(resumed) { work in
            ((try? String(contentsOf: work.appendingPathComponent("samples.jsonl"), encoding: .utf8))?.filter { $0 == "\n" }.count ?? 0) >= 1
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: resumed.path), "no output before the compile is complete")
        _ = try run(resumed) { work in FileManager.default.fileExists(atPath: work.appendingPathComponent("checkpoint.bin").path) }
        XCTAssertEqual(try run(resumed).status, 0)
        try assertSameCartridge(reference, resumed)
        let work = Compiler.defaultWorkDirectory(for: reference)
        let groups = try String(contentsOf: work.appendingPathComponent("samples.jsonl"), encoding: .utf8).filter { $0 == "\n" }.count
        XCTAssertEqual(groups, 3, "6 samples in groups of 2")
    }

    func testAnUnknownKindOfConversationIsRefusedWithTheKnownOnes() throws {
        let r = try run(dir.appendingPathComponent("x.cart"), extra: ["--kinds", "question,quiz"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("unknown kind 'quiz'") && r.stderr.contains("recall"), r.stderr)
    }

    func testRecallConversationsQuoteTheCorpusAndTrain() throws {
        let out = dir.appendingPathComponent("recall.cart")
        XCTAssertEqual(try run(out, steps: 2, extra: ["--kinds", "recall,question"]).status, 0)
        let lines = try String(contentsOf: Compiler.defaultWorkDirectory(for: out).appendingPathComponent("samples.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        let samples = try lines.flatMap { try JSONDecoder().decode([SelfStudySample].self, from: Data($0.utf8)) }
        XCTAssertEqual(samples.map(\.kind), [.recall, .question, .recall, .question, .recall, .question])
        let tok = try TestResources.model().tokenizer
        for s in samples where s.kind == .recall {
            let q = tok.decode(s.question)
            XCTAssertTrue(q.hasPrefix("Complete this sentence from the text: \""), q)
            let head = q.dropFirst("Complete this sentence from the text: \"".count).replacingOccurrences(of: " ...\"", with: "")
            XCTAssertTrue(try String(contentsOf: docs.appendingPathComponent("lighthouse.txt"), encoding: .utf8).contains(head), "\(head) is not from the corpus")
            XCTAssertFalse(s.answer.isEmpty)
        }
    }

    func testAFinishedCompileTrainsLongerWhenRunAgainWithMoreSteps() throws {
        let reference = try uninterruptedCompile()
        let extended = dir.appendingPathComponent("extended.cart")
        XCTAssertEqual(try run(extended, steps: 3).status, 0)
        XCTAssertEqual(try run(extended, steps: 6).status, 0)
        try assertSameCartridge(reference, extended)
        // fewer steps than the checkpoint holds would silently return the longer training
        let fewer = try run(extended, steps: 4)
        XCTAssertNotEqual(fewer.status, 0)
        XCTAssertTrue(fewer.stderr.contains("already trained 6 steps"), fewer.stderr)
    }

    func testDeepDistillationTrainsWithTheHiddenStateTermAndLogsIt() throws {
        let out = dir.appendingPathComponent("deep.cart")
        let r = try run(out, steps: 2, extra: ["--hidden-state-weight", "0.5", "--teacher-context", "corpus"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let log = try String(contentsOf: Compiler.defaultWorkDirectory(for: out).appendingPathComponent("log.jsonl"), encoding: .utf8)
            .split(separator: "\n").compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let steps = log.filter { $0["loss"] != nil }
        XCTAssertEqual(steps.count, 2)
        for s in steps {
            let loss = try XCTUnwrap(s["loss"] as? Double), hidden = try XCTUnwrap(s["hidden_loss"] as? Double)
            XCTAssertGreaterThan(hidden, 0)
            XCTAssertLessThan(hidden, loss, "the logged loss is the KL plus the hidden-state term")
        }
        let bad = try run(dir.appendingPathComponent("bad.cart"), extra: ["--hidden-state-weight", "500"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--hidden-state-weight"), bad.stderr)
    }
}

final class DeepDistillationTests: XCTestCase {
    /// The teacher's states for a batch are the residual stream after each layer with the
    /// teacher context in front, whether that context is shared by the batch's sequences or not.
    func testTeacherStatesAreEachLayersOutputWithTheTeacherContextInFront() throws {
        let model = try TestResources.model()
        let tok = model.tokenizer
        let corpus = tok.encode("The keeper of the lamp was Ada Brennan, who came from Galway in 1902. She wrote every passing ship into a green logbook.",
                                parseSpecial: false)
        let a = StudentPrompt.ids(question: tok.encode("Who kept the lamp?", parseSpecial: false), tokenizer: tok) + tok.encode("Ada Brennan.", parseSpecial: false)
        let b = StudentPrompt.ids(question: tok.encode("What colour was the logbook?", parseSpecial: false), tokenizer: tok) + tok.encode("Green.", parseSpecial: false)
        let sequences = [a, b, a].map { TrainingSequence.nextToken($0) }
        let spans = [0..<corpus.count, 0..<corpus.count, 5..<corpus.count]
        let targets = try TeacherHiddenStates(model: model, corpus: corpus, weight: 0.25).targets(sequences: sequences, spans: spans)
        XCTAssertEqual(targets.weight, 0.25)
        let c = model.config, rows = sequences.reduce(0) { $0 + $1.tokens.count }
        XCTAssertEqual(targets.states.count, c.layers * rows * c.dim)
        var row0 = 0, worst: Float = 0
        for (tokens, span) in zip([a, b, a], spans) {
            let system = StudentPrompt.systemTurn(corpus[span], tokenizer: tok), input = system + tokens
            _ = model.model.forward(tokens: [input], caches: [model.model.makeCache(capacity: input.count)]) { layer, x in
                guard layer > 0 else { return }
                for t in 0..<tokens.count {
                    for i in 0..<c.dim {
                        let want = x[(system.count + t) * c.dim + i], got = targets.states[((layer - 1) * rows + row0 + t) * c.dim + i]
                        worst = max(worst, abs(want - got) / (1 + abs(want)))
                    }
                }
            }
            row0 += tokens.count
        }
        XCTAssertLessThan(worst, 1e-3, "shared-context states against a plain forward")
    }

    func testAHiddenStateWeightOfZeroLeavesTheStoredSettingsAsBefore() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var options = CompileOptions()
        XCTAssertFalse(String(decoding: try encoder.encode(options), as: UTF8.self).contains("hiddenStateWeight"),
                       "work directories made before the option still resume")
        options.hiddenStateWeight = 0.5
        let stored = try encoder.encode(options)
        XCTAssertEqual(try JSONDecoder().decode(CompileOptions.self, from: stored), options)
        XCTAssertEqual(try JSONDecoder().decode(CompileOptions.self, from: Data("{}".utf8)), CompileOptions(), "missing settings take their defaults")
    }
}

final class SelfStudyKindTests: XCTestCase {
    /// A window of four sentences with names, studied by the real model with the kinds that need no agent A.
    private func conversations(kinds: [SeedKind], count: Int) throws -> (samples: [SelfStudySample], model: LanguageModel) {
        let model = try TestResources.model()
        let text = "The harbour was quiet that year. The keeper of the lamp was Ada Brennan, who came from Galway in 1902. "
            + "She wrote every passing ship into a green logbook. Her brother Tomas repaired the lens each spring. The end came later."
        var options = CompileOptions()
        options.seedKinds = kinds
        options.maxAnswerTokens = 48
        let window = SelfStudy.Window(corpusWindow: CorpusWindow(start: 0, ids: model.tokenizer.encode(text, parseSpecial: false)),
                                      index: 0, firstIndex: 0, count: count)
        return (try SelfStudy(model: model, options: options).conversations(windows: [window], corpus: window.corpusWindow.ids), model)
    }

    func testRecitedAnswersAreTheQuotedSentenceWithTheTeachersDistributionAlongIt() throws {
        let (samples, model) = try conversations(kinds: [.recite], count: 3)
        let tok = model.tokenizer
        for s in samples {
            let question = tok.decode(s.question), answer = tok.decode(Array(s.answer.dropLast()))
            XCTAssertEqual(s.kind, .recite)
            XCTAssertEqual(s.answer.last, tok.encode("<|im_end|>", parseSpecial: true)[0], "the answer ends the turn")
            XCTAssertEqual(s.teacher.count, s.answer.count, "one teacher distribution per answer token")
            XCTAssertTrue(question.hasPrefix("Complete this sentence from the text: \""), question)
            let head = question.dropFirst("Complete this sentence from the text: \"".count).dropLast(" ...\"".count)
            XCTAssertTrue(answer.hasPrefix(head), "\(answer) restates \(head)")
            XCTAssertTrue(["The keeper of the lamp was Ada Brennan, who came from Galway in 1902.",
                           "She wrote every passing ship into a green logbook.",
                           "Her brother Tomas repaired the lens each spring."].contains(answer), answer)
            // with the sentence in its context the teacher copies it: most given tokens are its first choice
            let copied = zip(s.answer, s.teacher).filter { $0.0 == $0.1.ids.first }.count
            XCTAssertGreaterThan(Double(copied) / Double(s.answer.count), 0.6, answer)
        }
        XCTAssertEqual(Set(samples.map { tok.decode($0.answer) }).count, 3, "three conversations quote three sentences")
    }

    func testWithTheCorpusAsTeacherContextTheTeacherReadsTheWholeCorpusNotTheWindow() throws {
        let model = try TestResources.model()
        let tok = model.tokenizer
        let corpus = tok.encode("The harbour was quiet that year. The keeper of the lamp was Ada Brennan, who came from Galway in 1902. "
            + "She wrote every passing ship into a green logbook. Her brother Tomas repaired the lens each spring.", parseSpecial: false)
        let start = corpus.count / 2
        var options = CompileOptions()
        options.seedKinds = [.recite]
        options.maxAnswerTokens = 48
        options.teacherContext = .corpus
        let study = SelfStudy(model: model, options: options)
        let window = CorpusWindow(start: start, ids: Array(corpus[start...]))
        XCTAssertEqual(study.teacherSpan(of: window, corpusLength: corpus.count), 0..<corpus.count)
        let samples = try study.conversations(windows: [SelfStudy.Window(corpusWindow: window, index: 0, firstIndex: 0, count: 2)], corpus: corpus)
        for s in samples {
            // the teacher's rows are those of the whole corpus in context, not of the window alone
            let prompt = StudentPrompt.ids(question: s.question, tokenizer: tok)
            func rows(context: ArraySlice<Int>) -> [TeacherTopK] {
                let system = study.systemTurn(context), input = system + prompt + s.answer.dropLast()
                let logits = model.model.forward(tokens: [input], caches: [model.model.makeCache(capacity: input.count)], allLogits: true)
                return (0..<s.answer.count).map { TeacherTopK(logits: logits.pointer + (system.count + prompt.count - 1 + $0) * model.config.vocabSize,
                                                              count: model.config.vocabSize) }
            }
            let whole = rows(context: corpus[...]), alone = rows(context: window.ids[...])
            XCTAssertEqual(s.teacher.map(\.ids), whole.map(\.ids))
            for (a, b) in zip(s.teacher, whole) {
                for (x, y) in zip(a.logProbs, b.logProbs) { XCTAssertEqual(x, y, accuracy: 1e-3) }
            }
            XCTAssertNotEqual(s.teacher.map(\.logProbs), alone.map(\.logProbs))
        }
    }

    func testDistilledUserTurnsCarryTheTeachersRowsOverTheQuestion() throws {
        let model = try TestResources.model()
        let tok = model.tokenizer
        let corpus = tok.encode("The keeper of the lamp was Ada Brennan, who came from Galway in 1902. She wrote every passing ship into a green logbook.",
                                parseSpecial: false)
        var options = CompileOptions()
        options.seedKinds = [.recite, .entity]
        options.maxAnswerTokens = 24
        options.corpusTurnWeight = 1
        let study = SelfStudy(model: model, options: options)
        let window = SelfStudy.Window(corpusWindow: CorpusWindow(start: 0, ids: corpus), index: 0, firstIndex: 0, count: 2)
        let samples = try study.conversations(windows: [window], corpus: corpus)
        XCTAssertEqual(samples.map(\.kind), [.recite, .entity])
        for s in samples {
            XCTAssertEqual(s.questionTeacher.count, s.question.count, "one row per question token")
            // each row is the teacher's distribution with the window in context, before that token
            let system = study.systemTurn(corpus[...]), prompt = StudentPrompt.ids(question: s.question, tokenizer: tok)
            let u = tok.encode("<|im_start|>user\n", parseSpecial: true).count
            let logits = model.model.forward(tokens: [system + prompt], caches: [model.model.makeCache(capacity: system.count + prompt.count)], allLogits: true)
            for (i, row) in s.questionTeacher.enumerated() {
                let want = TeacherTopK(logits: logits.pointer + (system.count + u + i - 1) * model.config.vocabSize, count: model.config.vocabSize)
                XCTAssertEqual(row.ids, want.ids)
                for (a, b) in zip(row.logProbs, want.logProbs) { XCTAssertEqual(a, b, accuracy: 1e-3) }
            }
        }
        options.corpusTurnWeight = 0
        XCTAssertTrue(try SelfStudy(model: model, options: options).conversations(windows: [window], corpus: corpus).allSatisfy(\.questionTeacher.isEmpty))
    }

    func testALongCorpusGivesTheTeacherTheLongestSpanAroundTheWindowThatFits() throws {
        let model = try TestResources.model()
        var options = CompileOptions()
        options.teacherContext = .corpus
        let study = SelfStudy(model: model, options: options)
        let n = 3 * model.config.contextLength
        for start in [0, n / 2, n - 500] {
            let window = CorpusWindow(start: start, ids: Array(repeating: 1, count: 500))
            let span = study.teacherSpan(of: window, corpusLength: n)
            XCTAssertTrue(span.contains(start) && span.contains(start + 499), "\(span) holds the window at \(start)")
            XCTAssertTrue(span.lowerBound >= 0 && span.upperBound <= n)
            // the span with its markup, a question and an answer fills the context, no more
            let need = study.systemTurn(Array(repeating: 1, count: span.count)[...]).count + options.maxQuestionTokens + 48 + options.maxAnswerTokens
            XCTAssertLessThanOrEqual(need, model.config.contextLength)
            XCTAssertGreaterThan(need, model.config.contextLength - 32)
        }
        options.teacherContext = .window
        let window = CorpusWindow(start: 700, ids: Array(repeating: 1, count: 300))
        XCTAssertEqual(SelfStudy(model: model, options: options).teacherSpan(of: window, corpusLength: n), 700..<1000)
    }

    func testEntityQuestionsNameEachNameOfTheWindowBeforeAnyTwice() throws {
        let (samples, model) = try conversations(kinds: [.entity], count: 4)
        let asked = samples.map { model.tokenizer.decode($0.question) }
        XCTAssertEqual(Set(asked), Set(["Ada Brennan", "Galway", "1902", "Tomas"].map { SeedKind.entityQuestion(term: $0) }), "\(asked)")
        for s in samples {
            XCTAssertEqual(s.kind, .entity)
            XCTAssertFalse(s.answer.isEmpty)
            XCTAssertEqual(s.teacher.count, s.answer.count)
        }
    }
}
