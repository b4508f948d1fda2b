import FoundationEssentials
import FuzzTargets
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Every committed fuzz input (Fuzz/Corpus/<target>/ and the crash reproducers in
/// Fuzz/Regressions/<target>/) run through the same FuzzTargets functions the libFuzzer binaries call,
/// in this debug build where every bounds and overflow check traps: what the fuzzers once found stays
/// fixed, in seconds, without libFuzzer. Fuzz/README.md says how to fuzz for longer.
@Suite struct FuzzCorpusReplayTests {
    static let fuzzFolder = Fixture.repositoryRoot + "Fuzz/"

    static func files(_ folder: String) -> [(name: String, bytes: [UInt8])] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().compactMap { name in
            FileManager.default.contents(atPath: folder + name).map { (name, Array($0)) }
        }
    }

    @Test(arguments: FuzzTarget.allCases)
    func corpusReplays(_ target: FuzzTarget) {
        let corpus = Self.files(Self.fuzzFolder + "Corpus/\(target.rawValue)/")
        #expect(!corpus.isEmpty, "no committed corpus for \(target.rawValue)")
        for (_, bytes) in corpus + Self.files(Self.fuzzFolder + "Regressions/\(target.rawValue)/") {
            target.run(bytes)
        }
    }

    /// The seeds must still get as deep as they were written to (a login, a passed request, a logout
    /// at the provider): otherwise the harness, not the code, has changed, and the fuzzers would be
    /// exploring a dead end.
    @Test(arguments: FuzzTarget.allCases)
    func seedsReachWhatTheyAreFor(_ target: FuzzTarget) {
        for seed in FuzzSeeds.seeds(for: target) {
            let o = target.run(seed.bytes)
            switch seed.expect {
            case .loggedIn?: #expect(o.loggedIn, "\(target.rawValue)/\(seed.name) no longer logs in")
            case .passed?: #expect(o.passed, "\(target.rawValue)/\(seed.name) no longer passes a request")
            case .loggedOut?: #expect(o.loggedOut, "\(target.rawValue)/\(seed.name) no longer logs out at the provider")
            case nil: break
            }
        }
    }

    /// `IDT_WRITE_FUZZ_SEEDS=1 swift test --filter FuzzCorpusReplayTests` (re)writes the seeds into
    /// Fuzz/Corpus/<target>/seed-<name>, plus the real discovery documents from the fixtures.
    @Test func writeSeedsWhenAsked() throws {
        guard getenv("IDT_WRITE_FUZZ_SEEDS") != nil else { return }
        for target in FuzzTarget.allCases {
            let folder = Self.fuzzFolder + "Corpus/\(target.rawValue)/"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            var seeds = FuzzSeeds.seeds(for: target).map { ($0.name, $0.bytes) }
            if target == .discovery {
                for (name, bytes) in Self.files(Fixture.folder + "discovery/") {
                    seeds.append((String(name.prefix { $0 != "." }), bytes))
                }
            }
            for (name, bytes) in seeds {
                #expect(FileManager.default.createFile(atPath: folder + "seed-" + name, contents: Data(bytes)))
            }
        }
    }
}
