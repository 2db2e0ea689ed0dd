// swift-tools-version:6.0
import PackageDescription

// A worker of your own under the supervisor, built as any outside package would build it: through the three
// library products, nothing else. `swift build -c release` here, then
//   supervisor --workers 4 -- .build/release/visit-counter
let package = Package(
    name: "visit-counter",
    platforms: [.macOS(.v15)],
    products: [.executable(name: "visit-counter", targets: ["VisitCounter"])],
    dependencies: [
        // In your own package, the URL you cloned prefork from. This example is of prefork 0.17.1 (what
        // `supervisor --version` prints and CHANGELOG.md's newest version); no release is tagged yet:
        //   .package(url: "<prefork repository URL>", branch: "main")
        .package(name: "prefork", path: "../.."),
    ],
    targets: [
        .executableTarget(name: "VisitCounter", dependencies: [
            .product(name: "PreforkWorker", package: "prefork"),
            .product(name: "PreforkPostgres", package: "prefork"),
            .product(name: "PreforkRedis", package: "prefork"),
        ]),
    ]
)
