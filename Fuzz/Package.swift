// swift-tools-version:6.0
import PackageDescription

// The libFuzzer binaries: one executable per fuzz target, each a few lines handing libFuzzer's driver
// the target's function from the FuzzTargets library of the main package (which the corpus replay
// test runs too). Built only with the sanitizer flags, by Fuzz/run.sh (see Fuzz/README.md):
//   swift build -c release --package-path Fuzz --scratch-path .build-fuzz \
//     --toolset Fuzz/lld-toolset.json -Xswiftc -sanitize=fuzzer,address
let targets = ["jws", "claims", "jwks", "discovery", "form", "cookie", "session", "state", "logout"]

let package = Package(
    name: "IDTokenFuzz",
    dependencies: [.package(name: "mod_auth_idtoken", path: "..")],
    targets: [.target(name: "CFuzzDriver")] + targets.map { name in
        .executableTarget(name: "fuzz-\(name)", dependencies: ["CFuzzDriver", .product(name: "FuzzTargets", package: "mod_auth_idtoken")])
    },
    swiftLanguageModes: [.v6]
)
