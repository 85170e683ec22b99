import CartridgeKernels
import CartridgeModel
import CartridgeRuntime
import Foundation

/// Why a generation ended, as OpenAI names it.
enum FinishReason: String, Sendable {
    /// A stop token or a stop sequence.
    case stop
    /// `max_tokens` reached.
    case length
    /// The client went away.
    case cancelled
}

/// What a running generation reports, in order: text pieces, then one `finished` or `failed`.
enum GenerationEvent: Sendable {
    case text(String)
    case finished(FinishReason, promptTokens: Int, completionTokens: Int)
    case failed(String)
}

/// How a job ended, for whoever started it (metrics, releasing its cartridges).
struct GenerationOutcome: Sendable {
    /// nil when the job failed.
    var reason: FinishReason?
    var promptTokens: Int
    var completionTokens: Int
    /// Time from submission to the first generated token, if one was.
    var firstToken: Duration?
    /// Time from submission to the end.
    var duration: Duration
}

/// One request's generation: its prompt after its cartridges, its limits and where its events go.
final class GenerationJob: @unchecked Sendable {
    let promptIDs: [Int]
    let cartridges: [LoadedCartridge]
    let maxTokens: Int
    let events: AsyncStream<GenerationEvent>
    /// Called once, on the scheduler's thread, when the job ends however it ends, before its
    /// last event is sent.
    let onEnd: @Sendable (GenerationOutcome) -> Void
    let submitted = ContinuousClock.now
    fileprivate let continuation: AsyncStream<GenerationEvent>.Continuation
    private let cancelLock = NSLock()
    private var cancelFlag = false

    // state owned by the scheduler thread
    fileprivate var sampler: Sampler
    fileprivate var stops: StopMatcher
    fileprivate var decoder: StreamingDecoder
    fileprivate var cache: KVCache?
    fileprivate var prefilled = 0
    fileprivate var generated = 0
    fileprivate var next = 0
    fileprivate var firstToken: Duration?

    init(promptIDs: [Int], cartridges: [LoadedCartridge], maxTokens: Int, sampling: SamplingParameters,
         stops: [String], tokenizer: Tokenizer, onEnd: @escaping @Sendable (GenerationOutcome) -> Void) {
        self.onEnd = onEnd
        self.promptIDs = promptIDs
        self.cartridges = cartridges
        self.maxTokens = maxTokens
        sampler = Sampler(sampling)
        self.stops = StopMatcher(stops: stops)
        decoder = tokenizer.streamingDecoder()
        (events, continuation) = AsyncStream.makeStream(of: GenerationEvent.self)
    }

    /// Stops the generation at the next step (the client went away).
    func cancel() {
        cancelLock.lock()
        cancelFlag = true
        cancelLock.unlock()
    }

    var isCancelled: Bool {
        cancelLock.lock()
        defer { cancelLock.unlock() }
        return cancelFlag
    }

    /// Reports a failure and ends the job.
    fileprivate func fail(_ message: String) {
        cache = nil
        onEnd(GenerationOutcome(reason: nil, promptTokens: promptIDs.count, completionTokens: generated, firstToken: firstToken,
                               duration: ContinuousClock.now - submitted))
        continuation.yield(.failed(message))
        continuation.finish()
    }
}

/// Continuous batching on one thread: waiting jobs join the running batch as slots free up; each
/// step prefills at most one chunk of every joining job's prompt (alone, as `LanguageModel.prefill`
/// does), then decodes one token of every running job in one batched forward, each sequence over
/// its own KV cache with its own cartridges in front. A finished or cancelled job leaves at once.
final class BatchScheduler: @unchecked Sendable {
    enum SubmitError: Error {
        case queueFull
        case shuttingDown
    }

    private let runtime: CartridgeRuntime
    private let maxBatch: Int
    private let maxQueue: Int
    private let condition = NSCondition()
    private var waiting: [GenerationJob] = []
    private var running: [GenerationJob] = []
    private var stopping = false
    private var thread: Thread?
    private let observer: @Sendable (_ queued: Int, _ running: Int) -> Void
    private let onStep: @Sendable (_ decoded: Int) -> Void
    /// Prompt tokens run per job and step, as `LanguageModel.prefill` chunks them.
    static let prefillChunk = 512

    /// `observer` sees the queue and batch sizes when they change; `onStep` the number of
    /// sequences of each batched decoding step.
    init(runtime: CartridgeRuntime, maxBatch: Int, maxQueue: Int,
         observer: @escaping @Sendable (_ queued: Int, _ running: Int) -> Void = { _, _ in },
         onStep: @escaping @Sendable (_ decoded: Int) -> Void = { _ in }) {
        self.onStep = onStep
        self.runtime = runtime
        self.maxBatch = maxBatch
        self.maxQueue = maxQueue
        self.observer = observer
    }

    func start() {
        let t = Thread { [self] in loop() }
        t.name = "cartridges.scheduler"
        t.stackSize = 16 << 20
        thread = t
        t.start()
    }

    /// Ends the loop after the current step; waiting and running jobs get `failed`.
    func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    /// Queues a job; throws `queueFull` when `maxQueue` jobs already wait.
    func submit(_ job: GenerationJob) throws {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { throw SubmitError.shuttingDown }
        guard waiting.count < maxQueue || running.count + waiting.count < maxBatch else { throw SubmitError.queueFull }
        waiting.append(job)
        observer(waiting.count, running.count)
        condition.signal()
    }

    private func loop() {
        let lm = runtime.model
        while true {
            condition.lock()
            while waiting.isEmpty && running.isEmpty && !stopping { condition.wait() }
            if stopping {
                for job in waiting + running { job.fail("the server is shutting down") }
                waiting = []
                running = []
                condition.unlock()
                return
            }
            while running.count < maxBatch && !waiting.isEmpty { running.append(waiting.removeFirst()) }
            observer(waiting.count, running.count)
            condition.unlock()

            var decoding: [GenerationJob] = []
            var ended = Set<ObjectIdentifier>()
            for job in running {
                if job.isCancelled { finish(job, .cancelled); ended.insert(ObjectIdentifier(job)); continue }
                if job.cache == nil {
                    do {
                        job.cache = try runtime.makeCache(job.cartridges, extraCapacity: job.promptIDs.count + job.maxTokens)
                    } catch {
                        job.fail("\(error)")
                        ended.insert(ObjectIdentifier(job))
                        continue
                    }
                }
                if job.prefilled < job.promptIDs.count {
                    let end = min(job.promptIDs.count, job.prefilled + Self.prefillChunk)
                    let logits = lm.model.forward(tokens: [Array(job.promptIDs[job.prefilled..<end])], caches: [job.cache!])
                    job.prefilled = end
                    if end == job.promptIDs.count, !take(job, logits.pointer) { ended.insert(ObjectIdentifier(job)) }
                } else {
                    decoding.append(job)
                }
            }
            if !decoding.isEmpty {
                let logits = lm.model.forward(tokens: decoding.map { [$0.next] }, caches: decoding.map { $0.cache! })
                onStep(decoding.count)
                for (i, job) in decoding.enumerated() where !take(job, logits.pointer + i * lm.config.vocabSize) {
                    ended.insert(ObjectIdentifier(job))
                }
            }
            if !ended.isEmpty {
                condition.lock()
                running.removeAll { ended.contains(ObjectIdentifier($0)) }
                observer(waiting.count, running.count)
                condition.unlock()
            }
        }
    }

    /// Samples the job's next token from its logits row and reports it; false when the job ended.
    private func take(_ job: GenerationJob, _ logits: UnsafePointer<Float>) -> Bool {
        let lm = runtime.model
        let t = job.sampler.sample(logits, count: lm.config.vocabSize)
        job.generated += 1
        if job.generated == 1 { job.firstToken = ContinuousClock.now - job.submitted }
        if lm.stopTokens.contains(t) {
            finish(job, .stop)
            return false
        }
        let (ready, stopped) = job.stops.append(job.decoder.append(t))
        if !ready.isEmpty { job.continuation.yield(.text(ready)) }
        if stopped {
            finish(job, .stop, flush: false)
            return false
        }
        if job.generated >= job.maxTokens {
            finish(job, .length)
            return false
        }
        job.next = t
        return true
    }

    /// Ends a job: the text still held back (unless a stop sequence cut it), then `finished`.
    private func finish(_ job: GenerationJob, _ reason: FinishReason, flush: Bool = true) {
        if flush && reason != .cancelled {
            let rest = job.stops.append(job.decoder.finish()).ready + job.stops.finish()
            if !rest.isEmpty { job.continuation.yield(.text(rest)) }
        }
        job.cache = nil  // the KV memory goes with the job, not with the stream's consumer
        // onEnd (metrics, unpinning) before the last event: once a client has its answer, both are done
        job.onEnd(GenerationOutcome(reason: reason, promptTokens: job.promptIDs.count, completionTokens: job.generated, firstToken: job.firstToken,
                                    duration: ContinuousClock.now - job.submitted))
        job.continuation.yield(.finished(reason, promptTokens: job.promptIDs.count, completionTokens: job.generated))
        job.continuation.finish()
    }
}
