// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "mod_auth_idtoken",
    products: [
        // The shared library the Apache module links. Built by the Makefile with the Swift runtime linked
        // in statically and `-z nodelete`, because httpd unloads and reloads modules (docs/internals.md).
        .library(name: "IDToken", type: .dynamic, targets: ["IDToken"]),
        // For the libFuzzer binaries of the Fuzz/ package (Fuzz/README.md); nothing ships it.
        .library(name: "FuzzTargets", targets: ["FuzzTargets"]),
    ],
    dependencies: [
        // 4.x: built on FoundationEssentials, so no full Foundation or ICU gets linked into httpd.
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
    ],
    targets: [
        // The ABI header shared with the Apache module (apache/).
        .target(name: "CShim", path: "CShim"),
        // libcurl's variadic setopt cannot be called from Swift: a few fixed-signature wrappers.
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("curl")]),
        // zlib for the session payload (its init functions are macros): one-call deflate and inflate.
        .target(name: "CZlib", linkerSettings: [.linkedLibrary("z")]),
        // The whole logic: provider metadata and keys, token validation, sessions, request decisions.
        .target(
            name: "IDTokenCore",
            dependencies: [
                "CCurl",
                "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // The @_cdecl entry points: C structs in, a decision out.
        .target(name: "IDToken", dependencies: ["IDTokenCore", "CShim"]),
        // One fuzz target per parser that meets outside input, driven through the public RequestDecider:
        // run by the libFuzzer binaries in Fuzz/, and replayed over the committed corpora by the tests.
        .target(
            name: "FuzzTargets",
            dependencies: [
                "IDTokenCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .testTarget(name: "IDTokenCoreTests", dependencies: ["IDTokenCore", "FuzzTargets"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
