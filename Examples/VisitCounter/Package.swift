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
        // In your own package: .package(url: "https://github.com/<you>/prefork", from: "1.0.0")
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
