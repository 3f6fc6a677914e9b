import Foundation

/// The last shared config an agent applied, on local disk: it starts from this while etcd is unreachable.
public struct ClusterCache: Codable, Sendable, Equatable {
    /// The etcd revision of the config.
    public var revision: Int64
    /// The YAML text.
    public var yaml: String
    /// When it was written (ISO 8601).
    public var saved: String

    public init(revision: Int64, yaml: String, saved: String) { self.revision = revision; self.yaml = yaml; self.saved = saved }

    /// Reads the cache at `path`; nil if absent, with a reason if unreadable.
    public static func load(_ path: String) -> Result<ClusterCache?, ClusterCacheError> {
        guard FileManager.default.fileExists(atPath: path) else { return .success(nil) }
        guard let data = FileManager.default.contents(atPath: path) else { return .failure(.init("\(path): cannot read the cluster cache")) }
        do { return .success(try JSONDecoder().decode(ClusterCache.self, from: data)) } catch {
            return .failure(.init("\(path): not a cluster cache (\(error))"))
        }
    }

    /// Writes atomically (temporary file, fsync, rename), mode 0600, creating the directory.
    public func save(_ path: String) throws(ClusterCacheError) {
        let dir = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let tmp = path + ".tmp"
            let data = clusterJSON(self)
            guard FileManager.default.createFile(atPath: tmp, contents: data, attributes: [.posixPermissions: 0o600]) else {
                throw ClusterCacheError("\(tmp): cannot write")
            }
            let fd = open(tmp, O_RDONLY)
            if fd >= 0 { fsync(fd); close(fd) }
            guard rename(tmp, path) == 0 else { throw ClusterCacheError("\(path): rename failed: \(String(cString: strerror(errno)))") }
        } catch let e as ClusterCacheError { throw e } catch {
            throw ClusterCacheError("\(path): \(error)")
        }
    }
}

/// The cluster cache could not be read or written.
public struct ClusterCacheError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
