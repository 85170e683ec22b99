import ArgumentParser
import Foundation

/// `cartridge plot`: SVG charts for the quality report, from compile work directories (loss
/// curves) or from a CSV of points (for example gap closed against compile minutes).
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Write SVG charts: loss curves of compiles, or any series of points from a CSV file.",
        subcommands: [Losses.self, Points.self])

    /// `cartridge plot losses WORK... -o FILE.svg`
    struct Losses: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Training loss (moving average) and validation loss of one or more compiles.",
            discussion: "Reads log.jsonl in each work directory (NAME.cart.work). Each compile is named by its folder.")

        @Argument(help: "Work directories of compiles.") var workDirs: [String]
        @Option(name: .shortAndLong, help: "Output .svg file.") var output: String
        @Option(help: "Moving-average window of the training loss, in steps.") var smooth = 5
        @Option(help: "Chart title.") var title = "Training and validation loss"

        func run() throws {
            guard !workDirs.isEmpty else { throw ValidationError("give at least one work directory") }
            guard smooth >= 1 else { throw ValidationError("--smooth must be at least 1") }
            var chart = SVGChart(title: title, xLabel: "optimizer step", yLabel: "loss (nats / token)")
            for dir in workDirs {
                let url = URL(fileURLWithPath: dir)
                let name = url.lastPathComponent.replacingOccurrences(of: ".cart.work", with: "")
                let (train, validation) = try Self.read(url.appendingPathComponent("log.jsonl"))
                guard !train.isEmpty || !validation.isEmpty else { throw CLIError("\(dir)/log.jsonl has no losses") }
                // a resumed compile logs some steps twice; keep the last value of each step
                var byStep: [Int: Double] = [:]
                for (s, l) in train { byStep[s] = l }
                let steps = byStep.keys.sorted()
                let averaged = steps.indices.map { i -> (x: Double, y: Double) in
                    let window = steps[max(0, i - smooth + 1)...i].map { byStep[$0]! }
                    return (Double(steps[i]), window.reduce(0, +) / Double(window.count))
                }
                if !averaged.isEmpty { chart.series.append(.init(name: "\(name) train", points: averaged)) }
                var valByStep: [Int: Double] = [:]
                for (s, l) in validation { valByStep[s] = l }
                let val = valByStep.keys.sorted().map { (x: Double($0), y: valByStep[$0]!) }
                if !val.isEmpty { chart.series.append(.init(name: "\(name) validation", points: val, markers: true, dashed: true)) }
            }
            try Data(chart.svg().utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        }

        static func read(_ url: URL) throws -> (train: [(Int, Double)], validation: [(Int, Double)]) {
            guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw CLIError("cannot read \(url.path)") }
            var train: [(Int, Double)] = [], validation: [(Int, Double)] = []
            for line in text.split(separator: "\n") {
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let step = (o["step"] as? NSNumber)?.intValue else { continue }
                if let l = (o["loss"] as? NSNumber)?.doubleValue { train.append((step, l)) }
                if let v = (o["validation_loss"] as? NSNumber)?.doubleValue { validation.append((step, v)) }
            }
            return (train, validation)
        }
    }

    /// `cartridge plot points FILE.csv -o FILE.svg`
    struct Points: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Series of points from a CSV file with the columns series,x,y (a header line is skipped).")

        @Argument(help: "CSV file: series,x,y per line.") var csv: String
        @Option(name: .shortAndLong, help: "Output .svg file.") var output: String
        @Option(help: "Chart title.") var title = ""
        @Option(help: "Label of the x axis.") var xLabel = "x"
        @Option(help: "Label of the y axis.") var yLabel = "y"
        @Option(help: "A value the x axis must include (for example 0).") var xInclude: Double?
        @Option(help: "A value the y axis must include (for example 0).") var yInclude: Double?

        func run() throws {
            guard let text = try? String(contentsOfFile: csv, encoding: .utf8) else { throw CLIError("cannot read \(csv)") }
            var order: [String] = [], points: [String: [(x: Double, y: Double)]] = [:]
            for (n, line) in text.split(separator: "\n").enumerated() {
                let f = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard f.count == 3, let x = Double(f[1]), let y = Double(f[2]) else {
                    if n == 0 { continue }  // header
                    throw CLIError("\(csv):\(n + 1): expected series,x,y with numbers x and y")
                }
                if points[f[0]] == nil { order.append(f[0]) }
                points[f[0], default: []].append((x, y))
            }
            guard !order.isEmpty else { throw CLIError("\(csv) has no points") }
            var chart = SVGChart(title: title, xLabel: xLabel, yLabel: yLabel, xInclude: xInclude, yInclude: yInclude)
            for name in order { chart.series.append(.init(name: name, points: points[name]!, markers: true)) }
            try Data(chart.svg().utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        }
    }
}
