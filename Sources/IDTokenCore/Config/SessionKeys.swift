import Crypto
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// The secrets that seal cookies, read from the session key file: one key per line, the first seals,
/// every line opens (so a new key can be rolled in ahead of removing the old one). Each line is
/// stretched with HKDF into separate keys per purpose, so a state cookie can never be opened as a
/// session or the other way round.
package struct SessionKeys: Sendable {
    package enum Purpose: String, Sendable {
        case session = "idtoken session cookie v1"
        case state = "idtoken state cookie v1"
        /// The completed-login marker (LoginMarker): a cookie of its own kind, never opened as another.
        case marker = "idtoken login marker v1"
    }

    struct KeyPair: Sendable {
        let session: SymmetricKey
        let state: SymmetricKey
        let marker: SymmetricKey

        func key(_ purpose: Purpose) -> SymmetricKey {
            switch purpose {
            case .session: session
            case .state: state
            case .marker: marker
            }
        }
    }

    /// The key that seals: the file's first line.
    let sealer: KeyPair
    let keys: [KeyPair]

    static let minimumLineLength = 32
    package static let howToCreate = "create one with: openssl rand -base64 32 > FILE && chmod 600 FILE"

    init(lines: [String]) throws(ConfigError) {
        var keys = [KeyPair]()
        for line in lines {
            guard line.utf8.count >= Self.minimumLineLength else {
                throw .invalid("each key in the session key file must be at least \(Self.minimumLineLength) characters of random data; \(Self.howToCreate)")
            }
            let ikm = SymmetricKey(data: Array(line.utf8))
            func derive(_ p: Purpose) -> SymmetricKey {
                HKDF<SHA256>.deriveKey(inputKeyMaterial: ikm, salt: Array("mod_auth_idtoken".utf8),
                                       info: Array(p.rawValue.utf8), outputByteCount: 32)
            }
            keys.append(KeyPair(session: derive(.session), state: derive(.state), marker: derive(.marker)))
        }
        guard let first = keys.first else { throw .invalid("the session key file holds no key; \(Self.howToCreate)") }
        self.sealer = first
        self.keys = keys
    }

    /// Reads the key file. The result's warning, when set, is worth logging (e.g. a world-readable file).
    static func load(path: String) throws(ConfigError) -> (SessionKeys, warning: String?) {
        let how = Self.howToCreate.replacing("FILE", with: path)
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw .invalid("cannot read the session key file \(path) (\(String(cString: strerror(errno)))); \(how)")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .invalid("\(path) is not a regular file; \(how)") }
        guard let f = fopen(path, "r") else {
            throw .invalid("cannot open the session key file \(path) (\(String(cString: strerror(errno)))); \(how)")
        }
        defer { fclose(f) }
        var bytes = [UInt8](repeating: 0, count: 64 * 1024)
        let n = fread(&bytes, 1, bytes.count, f)
        let text = String(decoding: bytes.prefix(n), as: UTF8.self)
        let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .map(\.trimmingSpaces)
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        let keys: SessionKeys
        do {
            keys = try SessionKeys(lines: lines)
        } catch {
            throw .invalid("\(path): \(error.message)".replacing("FILE", with: path))
        }
        let warning = (st.st_mode & 0o004) != 0
            ? "the session key file \(path) is readable by every user; chmod 600 it (httpd reads it as root at start-up)"
            : nil
        return (keys, warning)
    }

    func sealingKey(_ purpose: Purpose) -> SymmetricKey { sealer.key(purpose) }

    func openingKeys(_ purpose: Purpose) -> [SymmetricKey] { keys.map { $0.key(purpose) } }
}
