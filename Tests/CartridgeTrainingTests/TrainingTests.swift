import CartridgeKernels
import CartridgeModel
import CartridgeTestSupport
import CartridgeTraining
import Foundation
import XCTest

/// The whole training path: gradients of a tiny random llama against finite differences, packing,
/// the optimizer's saved state, and the reference traces computed by PyTorch on the real model.
final class TrainingTests: XCTestCase {
    func testWholeModelGradientMatchesFiniteDifferences() {
        let model = TinyLlama.make()
        let prefix = TrainablePrefix(model: model, ids: [1, 7, 3, 22], frozen: 1)
        let batch = [TrainingSequence.nextToken([5, 9, 13, 2, 30]), TrainingSequence.nextToken([11, 4, 8])]
        checkPrefixGradient(model: model, prefix: prefix, batch: batch, name: "tiny llama, next-token, 2 packed sequences")
    }

    func testDistillationGradientMatchesFiniteDifferences() {
        let model = TinyLlama.make(seed: 5)
        let prefix = TrainablePrefix(model: model, ids: [1, 2, 3], frozen: 1)
        let ids = [[4, 9, 1], [], [7, 2]], lps: [[Float]] = [[log(0.5), log(0.3), log(0.1)], [], [log(0.8), log(0.15)]]
        let seq = TrainingSequence(tokens: [3, 17, 25], supervision: .distillation(ids: ids, logProbs: lps, weights: [1, 0, 1]))
        checkPrefixGradient(model: model, prefix: prefix, batch: [seq], name: "tiny llama, distillation")
    }

    /// The hidden-state term of deep context distillation, added to the KL: its gradient through
    /// every layer into the prefix, against finite differences. The targets sit at least 0.5 from
    /// the student's states in every coordinate, so no |h - t| crosses its kink within a step.
    func testHiddenStateTermGradientMatchesFiniteDifferences() {
        let model = TinyLlama.make(seed: 5)
        let ids = [1, 2, 3]
        let prefix = TrainablePrefix(model: model, ids: ids, frozen: 1)
        let lps: [[Float]] = [[log(0.5), log(0.3)], [], [log(0.8), log(0.15)], [log(0.9)]]
        let a = TrainingSequence(tokens: [3, 17, 25, 6], supervision: .distillation(ids: [[4, 9], [], [7, 2], [11]], logProbs: lps, weights: [1, 0, 1, 0.5]))
        let b = TrainingSequence.nextToken([14, 2, 33])
        let b2 = TrainingSequence(tokens: b.tokens, supervision: .distillation(ids: [[8], [30], []], logProbs: [[log(0.7)], [log(0.6)], []], weights: [1, 1, 0]))
        let own = studentStates(model: model, prefixIDs: ids, batch: [a, b2])
        var rng = SplitMix64(seed: 23)
        let targets = FloatBuffer(own.map { $0 + Float(rng.next() % 2 == 0 ? 1 : -1) * Float(0.5 + rng.nextUnit()) })
        checkPrefixGradient(model: model, prefix: prefix, batch: [a, b2], targets: HiddenStateTargets(weight: 0.7, states: targets),
                            name: "tiny llama, distillation with hidden states")
    }

    func testHiddenStateTermVanishesAtTheStudentsOwnStatesAndGrowsWithTheirDistance() {
        let model = TinyLlama.make(seed: 3)
        let ids = [1, 12, 5]
        let prefix = TrainablePrefix(model: model, ids: ids, frozen: 1)
        let batch = [TrainingSequence.nextToken([3, 8, 19, 27, 6]), TrainingSequence.nextToken([14, 2, 33])]
        let trainer = PrefixTrainer(model: model)
        let own = studentStates(model: model, prefixIDs: ids, batch: batch)
        let plain = trainer.loss(prefix: prefix, batch: batch)
        let same = trainer.loss(prefix: prefix, batch: batch, targets: HiddenStateTargets(weight: 1, states: FloatBuffer(own)))
        XCTAssertLessThan(same.hiddenLoss, 1e-5, "layer l's output is compared with the teacher's state for layer l")
        XCTAssertEqual(same.loss, plain.loss, accuracy: 1e-5)
        // targets at twice the student's states: each layer's D is |h - 2h| / |2h| = 1/2
        let doubled = trainer.loss(prefix: prefix, batch: batch, targets: HiddenStateTargets(weight: 0.6, states: FloatBuffer(own.map { 2 * $0 })))
        XCTAssertEqual(doubled.hiddenLoss, 0.6 * 0.5, accuracy: 1e-5)
        XCTAssertEqual(doubled.loss, plain.loss + doubled.hiddenLoss, accuracy: 1e-5)
    }

    /// (layers, R, D): the residual stream after each layer at every row of `batch` read after the
    /// prefix of `prefixIDs`, from the inference forward (not the trainer's).
    private func studentStates(model: LlamaModel, prefixIDs: [Int], batch: [TrainingSequence]) -> [Float] {
        let c = model.config, rows = batch.reduce(0) { $0 + $1.tokens.count }
        var states = [Float](repeating: 0, count: c.layers * rows * c.dim)
        var row0 = 0
        for s in batch {
            let n = s.tokens.count, p = prefixIDs.count
            _ = model.forward(tokens: [prefixIDs + s.tokens], caches: [model.makeCache(capacity: p + n)]) { layer, x in
                guard layer > 0 else { return }
                for t in 0..<n {
                    for i in 0..<c.dim { states[((layer - 1) * rows + row0 + t) * c.dim + i] = x[(p + t) * c.dim + i] }
                }
            }
            row0 += n
        }
        return states
    }

    private func checkPrefixGradient(model: LlamaModel, prefix: TrainablePrefix, batch: [TrainingSequence],
                                     targets: HiddenStateTargets? = nil, name: String) {
        let trainer = PrefixTrainer(model: model)
        let gK = FloatBuffer(count: prefix.keys.count), gV = FloatBuffer(count: prefix.values.count)
        let e = trainer.lossAndGradient(prefix: prefix, batch: batch, targets: targets, gradKeys: gK, gradValues: gV)
        if targets != nil { XCTAssertGreaterThan(e.hiddenLoss, 0.05, "the hidden-state term is part of what is checked") }
        for (tensor, grad, label) in [(prefix.keys, gK, "keys"), (prefix.values, gV, "values")] {
            let x = tensor.array
            // The float32 loss carries rounding noise of about 1e-7 relative: the finite-difference
            // error measured here falls as 1/h (h = 1e-3: 4e-2, 1e-2: 8e-3, 3e-2: 2.6e-3), so the step
            // is the largest one before curvature shows.
            let h: Float = 3e-2
            let err = GradientCheck.largestError("\(name), prefix \(label)", x: x, analytic: grad.array, h: h) { xs in
                for i in xs.indices { tensor[i] = xs[i] }
                defer { for i in x.indices { tensor[i] = x[i] } }
                return trainer.loss(prefix: prefix, batch: batch, targets: targets).loss
            }
            XCTAssertLessThan(err, 5e-3, "\(name) \(label)")
        }
        // along a random direction over all values at once
        let dir = GradientCheck.random(prefix.keys.count * 2, seed: 77)
        let base = prefix.keys.array + prefix.values.array
        let analytic = zip(dir, gK.array + gV.array).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        func set(_ t: Float) {
            for i in 0..<prefix.keys.count { prefix.keys[i] = base[i] + t * dir[i] }
            for i in 0..<prefix.values.count { prefix.values[i] = base[prefix.keys.count + i] + t * dir[prefix.keys.count + i] }
        }
        let h: Float = 1e-2
        set(h); let up = trainer.loss(prefix: prefix, batch: batch, targets: targets).loss
        set(-h); let down = trainer.loss(prefix: prefix, batch: batch, targets: targets).loss
        set(0)
        let fd = (up - down) / Double(2 * h)
        print("gradient check \(name), random direction: analytic \(analytic), finite difference \(fd)")
        XCTAssertEqual(fd, analytic, accuracy: 5e-3 * max(1, abs(analytic)))
    }

    func testPackedSequencesDoNotAttendToEachOther() {
        let model = TinyLlama.make(seed: 3)
        let prefix = TrainablePrefix(model: model, ids: [1, 12, 5], frozen: 1)
        let trainer = PrefixTrainer(model: model)
        let a = TrainingSequence.nextToken([3, 8, 19, 27, 6]), b = TrainingSequence.nextToken([14, 2, 33])
        let n = prefix.keys.count
        let (gK, gV) = (FloatBuffer(count: n), FloatBuffer(count: n))
        let packed = trainer.lossAndGradient(prefix: prefix, batch: [a, b], gradKeys: gK, gradValues: gV)
        let (aK, aV, bK, bV) = (FloatBuffer(count: n), FloatBuffer(count: n), FloatBuffer(count: n), FloatBuffer(count: n))
        let ea = trainer.lossAndGradient(prefix: prefix, batch: [a], gradKeys: aK, gradValues: aV)
        let eb = trainer.lossAndGradient(prefix: prefix, batch: [b], gradKeys: bK, gradValues: bV)
        let wa = ea.weight / (ea.weight + eb.weight), wb = eb.weight / (ea.weight + eb.weight)
        XCTAssertEqual(packed.loss, wa * ea.loss + wb * eb.loss, accuracy: 1e-5)
        var worst: Float = 0
        for i in 0..<n {
            worst = max(worst, abs(gK[i] - Float(wa) * aK[i] - Float(wb) * bK[i]), abs(gV[i] - Float(wa) * aV[i] - Float(wb) * bV[i]))
        }
        XCTAssertLessThan(worst, 1e-5, "packed gradient differs from the separate ones by \(worst)")
    }

    func testAdamStateRestoresBitExactly() throws {
        let model = TinyLlama.make(seed: 9)
        let trainer = PrefixTrainer(model: model)
        let batch = [TrainingSequence.nextToken([4, 5, 6, 7, 8])]
        func run(steps: Int, prefix: TrainablePrefix, adam: Adam) {
            let gK = FloatBuffer(count: prefix.keys.count), gV = FloatBuffer(count: prefix.values.count)
            for _ in 0..<steps {
                _ = trainer.lossAndGradient(prefix: prefix, batch: batch, gradKeys: gK, gradValues: gV)
                adam.update(prefix: prefix, gradKeys: gK, gradValues: gV)
            }
        }
        let p1 = TrainablePrefix(model: model, ids: [1, 2, 3], frozen: 1), a1 = Adam(config: AdamConfig(learningRate: 0.05), prefix: p1)
        run(steps: 4, prefix: p1, adam: a1)

        let p2 = TrainablePrefix(model: model, ids: [1, 2, 3], frozen: 1), a2 = Adam(config: AdamConfig(learningRate: 0.05), prefix: p2)
        run(steps: 2, prefix: p2, adam: a2)
        let saved = a2.serialized(), keys = p2.keys.array, values = p2.values.array
        let p3 = TrainablePrefix(model: model, ids: [1, 2, 3], frozen: 1), a3 = Adam(config: AdamConfig(learningRate: 0.05), prefix: p3)
        for i in keys.indices { p3.keys[i] = keys[i]; p3.values[i] = values[i] }
        try a3.restore(from: saved)
        XCTAssertEqual(a3.step, 2)
        run(steps: 2, prefix: p3, adam: a3)
        XCTAssertEqual(p3.keys.array.map(\.bitPattern), p1.keys.array.map(\.bitPattern))
        XCTAssertEqual(p3.values.array.map(\.bitPattern), p1.values.array.map(\.bitPattern))
        // frozen slot 0 never moved
        let fresh = TrainablePrefix(model: model, ids: [1, 2, 3], frozen: 1)
        for l in 0..<fresh.layers {
            for h in 0..<fresh.kvHeads {
                XCTAssertEqual(Array(UnsafeBufferPointer(start: p1.key(layer: l, head: h), count: fresh.headDim)),
                               Array(UnsafeBufferPointer(start: fresh.key(layer: l, head: h), count: fresh.headDim)))
            }
        }
        XCTAssertThrowsError(try a3.restore(from: saved.prefix(30)))
        XCTAssertThrowsError(try a3.restore(from: Data(repeating: 7, count: 64)))
    }

    func testAnchorPullsTrainableSlotsBackToTheInitialization() {
        let model = TinyLlama.make(seed: 3)
        let prefix = TrainablePrefix(model: model, ids: [1, 2, 3, 4], frozen: 1)
        let initKeys = prefix.keys.array, initValues = prefix.values.array
        let (lr, anchor): (Float, Float) = (0.1, 2)
        let adam = Adam(config: AdamConfig(learningRate: lr, anchor: anchor), prefix: prefix)
        // move every value away from the init, then step with a zero gradient: Adam's own term is
        // 0 / (0 + eps) = 0, so only the pull acts and shrinks each offset by (1 - lr * anchor)
        for i in initKeys.indices { prefix.keys[i] += 1; prefix.values[i] -= 0.5 }
        let zero = FloatBuffer(count: prefix.keys.count)
        adam.update(prefix: prefix, gradKeys: zero, gradValues: zero)
        let slot = prefix.headDim, perHead = prefix.length * slot
        for i in initKeys.indices {
            let frozen = i % perHead < prefix.frozen * slot
            XCTAssertEqual(prefix.keys[i] - initKeys[i], frozen ? 1 : 1 - lr * anchor, accuracy: 1e-5, "key \(i)")
            XCTAssertEqual(prefix.values[i] - initValues[i], frozen ? -0.5 : -0.5 * (1 - lr * anchor), accuracy: 1e-5, "value \(i)")
        }
        // without an anchor the same step leaves the prefix where it is
        let free = Adam(config: AdamConfig(learningRate: lr), prefix: prefix), before = prefix.keys.array
        free.update(prefix: prefix, gradKeys: zero, gradValues: zero)
        XCTAssertEqual(prefix.keys.array, before)
    }

    func testAKeyAnchorPullsTheKeysAloneWhenTheValuesAreFree() {
        let model = TinyLlama.make(seed: 3)
        let prefix = TrainablePrefix(model: model, ids: [1, 2, 3, 4], frozen: 1)
        let initKeys = prefix.keys.array, initValues = prefix.values.array
        let lr: Float = 0.1
        let adam = Adam(config: AdamConfig(learningRate: lr, anchor: 0, keyAnchor: 3), prefix: prefix)
        for i in initKeys.indices { prefix.keys[i] += 1; prefix.values[i] -= 0.5 }
        let zero = FloatBuffer(count: prefix.keys.count)
        adam.update(prefix: prefix, gradKeys: zero, gradValues: zero)
        let trainable = prefix.frozen * prefix.headDim  // first trainable slot of head 0
        XCTAssertEqual(prefix.keys[trainable] - initKeys[trainable], 1 - lr * 3, accuracy: 1e-5, "keys pulled")
        XCTAssertEqual(prefix.values[trainable] - initValues[trainable], -0.5, accuracy: 1e-6, "values free")
        // and the other way round: the values' anchor alone
        let valuesOnly = Adam(config: AdamConfig(learningRate: lr, anchor: 2, keyAnchor: 0), prefix: prefix)
        let keysBefore = prefix.keys.array, valuesBefore = prefix.values.array
        for i in initKeys.indices { prefix.values[i] += 1 }
        valuesOnly.update(prefix: prefix, gradKeys: zero, gradValues: zero)
        XCTAssertEqual(prefix.keys.array, keysBefore, "keys free")
        XCTAssertEqual(prefix.values[trainable] - valuesBefore[trainable], 1 - lr * 2, accuracy: 1e-5, "values pulled")
    }

    func testCosineScheduleFallsFromThePeakToATenthAndConstantStaysPut() {
        let peak: Float = 0.005, steps = 160
        let rates = (0..<steps).map { LearningRateSchedule.cosine.rate(peak: peak, step: $0, steps: steps) }
        XCTAssertEqual(rates.first!, peak, accuracy: 1e-9)
        XCTAssertEqual(rates.last!, peak * LearningRateSchedule.floor, accuracy: 1e-9)
        XCTAssertEqual(rates[(steps - 1) / 2], peak * (1 + LearningRateSchedule.floor) / 2, accuracy: peak * 0.02, "halfway is the midpoint")
        for (a, b) in zip(rates, rates.dropFirst()) { XCTAssertLessThanOrEqual(b, a) }
        XCTAssertEqual(LearningRateSchedule.cosine.rate(peak: peak, step: 0, steps: 1), peak)
        XCTAssertTrue((0..<steps).allSatisfy { LearningRateSchedule.constant.rate(peak: peak, step: $0, steps: steps) == peak })
    }

    func testUpdateWithAScheduledRateScalesTheAnchorPull() {
        let model = TinyLlama.make(seed: 3)
        let prefix = TrainablePrefix(model: model, ids: [1, 2, 3], frozen: 1)
        let initKeys = prefix.keys.array
        let adam = Adam(config: AdamConfig(learningRate: 0.1, anchor: 2), prefix: prefix)
        for i in initKeys.indices { prefix.keys[i] += 1 }
        let zero = FloatBuffer(count: prefix.keys.count)
        adam.update(prefix: prefix, gradKeys: zero, gradValues: zero, learningRate: 0.05)
        let trainable = prefix.frozen * prefix.headDim  // first trainable key of head 0
        XCTAssertEqual(prefix.keys[trainable] - initKeys[trainable], 1 - 0.05 * 2, accuracy: 1e-5)
    }

    // MARK: reference traces (PyTorch, float32, same weights)

    func testSmallReferenceTrace() throws { try checkTrace("train-trace-small.json") }
    func testReferenceTrace() throws { try checkTrace("train-trace.json") }

    private func checkTrace(_ file: String) throws {
        let lm = try TestResources.model()
        let ref = try TestResources.reference(file)
        let prefix = TrainablePrefix(model: lm.model, ids: ref["prefix_ids"] as! [Int], frozen: 1)
        // init: per-layer sums and norms of K and V over all slots
        let initStats = ref["init_prefix_stats"] as! [[Double]]
        for l in 0..<prefix.layers {
            let s = stats(prefix, layer: l, fromSlot: 0)
            for (ours, theirs) in zip(s, initStats[l]) { XCTAssertLessThanOrEqual(abs(ours - theirs), 3e-3 * max(1, abs(theirs)), "\(file) init layer \(l)") }
        }
        let trainer = PrefixTrainer(model: lm.model)
        let adam = Adam(config: AdamConfig(learningRate: Float(ref["lr"] as! Double)), prefix: prefix)
        let gK = FloatBuffer(count: prefix.keys.count), gV = FloatBuffer(count: prefix.values.count)
        let batch = [TrainingSequence.nextToken(ref["ids"] as! [Int])]
        let refLosses = ref["losses"] as! [Double], refNorms = ref["grad_norms"] as! [Double]
        var worstLoss = 0.0, worstNorm = 0.0
        for step in 0..<(ref["steps"] as! Int) {
            let e = trainer.lossAndGradient(prefix: prefix, batch: batch, gradKeys: gK, gradValues: gV)
            let norm = trainableGradientNorm(prefix: prefix, gradKeys: gK, gradValues: gV)
            worstLoss = max(worstLoss, abs(e.loss - refLosses[step]))
            worstNorm = max(worstNorm, abs(norm - refNorms[step]) / refNorms[step])
            if step == 0 {
                let layerNorms = ref["layer_grad_norms_step0"] as! [[Double]]
                for l in 0..<prefix.layers {
                    let (k, v) = layerGradNorms(prefix, gK, gV, layer: l)
                    XCTAssertEqual(k, layerNorms[l][0], accuracy: 5e-4 * layerNorms[l][0], "\(file) dK layer \(l)")
                    XCTAssertEqual(v, layerNorms[l][1], accuracy: 5e-4 * layerNorms[l][1], "\(file) dV layer \(l)")
                }
            }
            adam.update(prefix: prefix, gradKeys: gK, gradValues: gV)
        }
        let final = trainer.loss(prefix: prefix, batch: batch).loss
        worstLoss = max(worstLoss, abs(final - (ref["final_loss"] as! Double)))
        print("\(file): largest |loss - reference| \(worstLoss), largest relative grad-norm difference \(worstNorm)")
        XCTAssertLessThan(worstLoss, 1e-4)
        XCTAssertLessThan(worstNorm, 5e-4)
        let finalStats = ref["final_trainable_stats"] as! [[Double]]
        for l in 0..<prefix.layers {
            let s = stats(prefix, layer: l, fromSlot: 1)
            for (ours, theirs) in zip(s, finalStats[l]) { XCTAssertLessThanOrEqual(abs(ours - theirs), 3e-3 * max(1, abs(theirs)), "\(file) final layer \(l)") }
        }
    }

    /// [sum K, |K|, sum V, |V|] of one layer over slots fromSlot..<p, in float64.
    private func stats(_ p: TrainablePrefix, layer l: Int, fromSlot s0: Int) -> [Double] {
        var out: [Double] = []
        for get in [p.key, p.value] {
            var sum = 0.0, sq = 0.0
            for h in 0..<p.kvHeads {
                let base = get(l, h)
                for i in (s0 * p.headDim)..<(p.length * p.headDim) { sum += Double(base[i]); sq += Double(base[i]) * Double(base[i]) }
            }
            out += [sum, sq.squareRoot()]
        }
        return out
    }

    private func layerGradNorms(_ p: TrainablePrefix, _ gK: FloatBuffer, _ gV: FloatBuffer, layer l: Int) -> (Double, Double) {
        var k = 0.0, v = 0.0
        for h in 0..<p.kvHeads {
            let off = (l * p.kvHeads + h) * p.length * p.headDim
            for i in (p.frozen * p.headDim)..<(p.length * p.headDim) {
                k += Double(gK[off + i]) * Double(gK[off + i])
                v += Double(gV[off + i]) * Double(gV[off + i])
            }
        }
        return (k.squareRoot(), v.squareRoot())
    }
}
