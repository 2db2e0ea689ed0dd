@testable import Arbiter
import Testing

@Suite struct BackoffTests {
    @Test func doublesFromTheBaseUpToTheCap() {
        let backoff = Backoff()
        #expect(backoff.delay(afterFailures: 0) == .zero)
        #expect(backoff.delay(afterFailures: 1) == .milliseconds(100))
        #expect(backoff.delay(afterFailures: 2) == .milliseconds(200))
        #expect(backoff.delay(afterFailures: 9) == .milliseconds(25_600))
        #expect(backoff.delay(afterFailures: 10) == .seconds(30))
        #expect(backoff.delay(afterFailures: Int.max) == .seconds(30))
    }

    @Test func configurationValidationNamesTheSetting() {
        var configuration = Arbiter<TestInstant>.Configuration.example
        configuration.workers = 0
        #expect(throws: ConfigurationError("workers must be from 1 to 1024, got 0")) { try configuration.validate() }
    }
}
