/// How many worker slots a supervisor may run: the one range that `--workers`, `API_WORKERS`, `scale`, TTIN
/// and the configuration's check all use (it was written in four places, and the check tested only ≥ 1).
public enum WorkerCount {
    public static let range: ClosedRange<Int> = 1...1024
}
