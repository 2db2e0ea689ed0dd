import Schedule
import Testing

/// Inputs `scripts/fuzz` found that trapped; each stays here (and in the fuzzer's seeds) once fixed.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    /// A TZif header whose counts are 0xFFFFFFFF: read as signed, they sent the cursor backwards
    /// ("Negative Array index is out of range"). Counts are unsigned and bounded by the file's size.
    @Test func tzifCountsAreUnsignedAndBounded() {
        func file(count: [UInt8]) -> [UInt8] {
            var bytes = Array("TZif2".utf8) + [UInt8](repeating: 0, count: 15)
            for _ in 0..<6 { bytes += count }
            return bytes + [UInt8](repeating: 0, count: 64)
        }
        #expect(TimeZoneRules.parse(file(count: [0xFF, 0xFF, 0xFF, 0xFF]), name: "broken") == nil)
        #expect(TimeZoneRules.parse(file(count: [0x80, 0, 0, 0]), name: "broken") == nil)
        #expect(TimeZoneRules.parse(file(count: [0, 0, 0x10, 0]), name: "broken") == nil)
    }
}
