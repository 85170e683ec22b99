import Foundation

/// A small line chart written as standalone SVG (no dependencies): several series of (x, y)
/// points, linear axes with rounded ticks, a legend. Used for the quality report's plots.
struct SVGChart {
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
        /// Draw a marker at every point (for sparse series such as validation losses).
        var markers = false
        var dashed = false
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series] = []
    /// Axis ranges always include these values when set (for example 0).
    var xInclude: Double?
    var yInclude: Double?
    var width = 760.0, height = 440.0

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    /// Tick values at a 1/2/5 x 10^k spacing, from the last one at or below lo to the first one
    /// at or above hi (the axis then spans exactly the ticks).
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 6) -> [Double] {
        guard hi > lo else { return [lo] }
        let raw = (hi - lo) / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var k = floor(lo / step + 1e-9), out: [Double] = []
        while true {
            out.append(k * step)
            if k * step >= hi - step * 1e-9 { return out }
            k += 1
        }
    }

    static func label(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
        return String(format: abs(v) >= 10 ? "%.1f" : "%.2f", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    func svg() -> String {
        let all = series.flatMap(\.points)
        let left = 70.0, right = 250.0, top = 40.0, bottom = 55.0
        let plotW = width - left - right, plotH = height - top - bottom
        let xs = all.map(\.x) + (xInclude.map { [$0] } ?? []), ys = all.map(\.y) + (yInclude.map { [$0] } ?? [])
        var x0 = xs.min() ?? 0, x1 = xs.max() ?? 1
        var y0 = ys.min() ?? 0, y1 = ys.max() ?? 1
        if x1 <= x0 { x1 = x0 + 1 }
        if y1 <= y0 { y1 = y0 + 1 }
        let xt = Self.ticks(x0, x1), yt = Self.ticks(y0, y1)
        x0 = xt.first!; x1 = xt.last!
        y0 = yt.first!; y1 = yt.last!
        let px = { (x: Double) in left + (x - x0) / (x1 - x0) * plotW }
        let py = { (y: Double) in top + (1 - (y - y0) / (y1 - y0)) * plotH }
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left + plotW / 2)" y="22" text-anchor="middle" font-size="15">\(Self.escape(title))</text>

        """
        for t in yt {
            s += "<line x1=\"\(left)\" y1=\"\(py(t))\" x2=\"\(left + plotW)\" y2=\"\(py(t))\" stroke=\"#e5e5e5\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(py(t) + 4)\" text-anchor=\"end\">\(Self.label(t))</text>\n"
        }
        for t in xt {
            s += "<line x1=\"\(px(t))\" y1=\"\(top)\" x2=\"\(px(t))\" y2=\"\(top + plotH)\" stroke=\"#f0f0f0\"/>"
            s += "<text x=\"\(px(t))\" y=\"\(top + plotH + 18)\" text-anchor=\"middle\">\(Self.label(t))</text>\n"
        }
        s += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotW)\" height=\"\(plotH)\" fill=\"none\" stroke=\"#444\"/>\n"
        s += "<text x=\"\(left + plotW / 2)\" y=\"\(height - 12)\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        s += "<text transform=\"translate(18 \(top + plotH / 2)) rotate(-90)\" text-anchor=\"middle\">\(Self.escape(yLabel))</text>\n"
        for (i, ser) in series.enumerated() {
            let color = Self.palette[i % Self.palette.count]
            let path = ser.points.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " ")
            let dash = ser.dashed ? " stroke-dasharray=\"6 4\"" : ""
            s += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.8\"\(dash)/>\n"
            if ser.markers {
                for p in ser.points { s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\" ", px(p.x), py(p.y)) + "fill=\"\(color)\"/>" }
                s += "\n"
            }
            let ly = top + 10 + Double(i) * 20
            s += "<line x1=\"\(left + plotW + 12)\" y1=\"\(ly)\" x2=\"\(left + plotW + 36)\" y2=\"\(ly)\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>"
            s += "<text x=\"\(left + plotW + 42)\" y=\"\(ly + 4)\">\(Self.escape(ser.name))</text>\n"
        }
        return s + "</svg>\n"
    }
}
