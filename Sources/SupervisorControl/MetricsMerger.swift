/// Merges the Prometheus text of every worker into one exposition, each sample labelled with its slot.
///
/// The text format wants all samples of a metric family in one group, under one `# HELP` and `# TYPE`, so
/// the workers' outputs cannot simply be concatenated: families are collected in order of first appearance,
/// and every worker's samples go under their family's header.
package enum MetricsMerger {
    package static func merge(_ workers: [(slot: Int, text: String)]) -> String {
        var order: [String] = []
        var headers: [String: [String]] = [:]
        var samples: [String: [String]] = [:]
        for (slot, text) in workers {
            var family = ""
            for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                if line.hasPrefix("#") {
                    let words = line.split(separator: " ", maxSplits: 3)
                    guard words.count >= 3, words[1] == "HELP" || words[1] == "TYPE" else { continue }
                    family = String(words[2])
                    if headers[family] == nil { order.append(family); headers[family] = [] }
                    if !headers[family, default: []].contains(where: { $0.hasPrefix("# \(words[1]) ") }) {
                        headers[family, default: []].append(String(line))
                    }
                    continue
                }
                let name = line.prefix { $0 != "{" && $0 != " " }
                if family.isEmpty || !name.hasPrefix(family) {
                    // A sample without a header of its own is its own family.
                    family = String(name)
                    if headers[family] == nil { order.append(family); headers[family] = [] }
                }
                samples[family, default: []].append(labelled(line, slot: slot))
            }
        }
        var out = ""
        for family in order {
            for header in headers[family] ?? [] { out += header + "\n" }
            for sample in samples[family] ?? [] { out += sample + "\n" }
        }
        return out
    }

    /// `name{a="b"} 1` → `name{slot="3",a="b"} 1`; `name 1` → `name{slot="3"} 1`.
    static func labelled(_ line: Substring, slot: Int) -> String {
        if let brace = line.firstIndex(of: "{") {
            let rest = line[line.index(after: brace)...]
            let separator = rest.hasPrefix("}") ? "" : ","
            return String(line[...brace]) + "slot=\"\(slot)\"" + separator + rest
        }
        guard let space = line.firstIndex(of: " ") else { return String(line) }
        return String(line[..<space]) + "{slot=\"\(slot)\"}" + line[space...]
    }
}
