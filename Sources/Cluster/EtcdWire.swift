import Foundation

// The JSON shapes of etcd's v3 gateway (grpc-gateway over etcdserverpb): keys and values
// are base64, 64-bit integers are strings, and fields at their default value are left out.

/// An etcd 64-bit integer: a JSON string (or, leniently, a number).
struct EtcdInt: Codable, Sendable {
    var value: Int64
    init(_ value: Int64) { self.value = value }
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self), let v = Int64(s) { value = v; return }
        if let v = try? c.decode(Int64.self) { value = v; return }
        throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an etcd integer")
    }
    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(String(value))
    }
}

struct WireHeader: Decodable, Sendable {
    var revision: EtcdInt?
    var member_id: String?
}

struct WireKV: Decodable, Sendable {
    var key: String?
    var value: String?
    var create_revision: EtcdInt?
    var mod_revision: EtcdInt?
    var version: EtcdInt?
    var lease: EtcdInt?
}

struct WireRangeRequest: Encodable {
    var key: String
    var range_end: String?
    var revision: EtcdInt?
    var limit: EtcdInt?
    var keys_only: Bool?
}

struct WireRangeResponse: Decodable {
    var header: WireHeader?
    var kvs: [WireKV]?
    var count: EtcdInt?
}

struct WirePutRequest: Encodable {
    var key: String
    var value: String
    var lease: EtcdInt?
}

struct WireCompare: Encodable {
    var target: String          // VERSION | CREATE | MOD | VALUE
    var key: String
    var result: String          // EQUAL | GREATER | LESS | NOT_EQUAL
    var mod_revision: EtcdInt?
    var version: EtcdInt?
    var create_revision: EtcdInt?
}

struct WireDeleteRequest: Encodable {
    var key: String
    var range_end: String?
}

struct WireRequestOp: Encodable {
    var request_put: WirePutRequest?
    var request_delete_range: WireDeleteRequest?
    var request_range: WireRangeRequest?
}

struct WireTxnRequest: Encodable {
    var compare: [WireCompare]
    var success: [WireRequestOp]
    var failure: [WireRequestOp]
}

struct WireResponseOp: Decodable {
    var response_range: WireRangeResponse?
}

struct WireTxnResponse: Decodable {
    var header: WireHeader?
    var succeeded: Bool?
    var responses: [WireResponseOp]?
}

struct WireLease: Codable {
    var ID: EtcdInt?
    var TTL: EtcdInt?
}

struct WireLeaseResponse: Decodable {
    var header: WireHeader?
    var ID: EtcdInt?
    var TTL: EtcdInt?
    var error: String?
}

struct WireResult<T: Decodable>: Decodable {
    var result: T?
    var error: WireError?
}

struct WireError: Decodable {
    var error: String?
    var message: String?
    var code: Int?
    var grpc_code: Int?
}

struct WireWatchCreate: Encodable {
    struct Create: Encodable {
        var key: String
        var range_end: String
        var start_revision: EtcdInt
        var progress_notify: Bool
        var prev_kv: Bool
    }
    var create_request: Create
}

struct WireEvent: Decodable {
    var type: String?            // absent = PUT
    var kv: WireKV?
}

struct WireWatchResponse: Decodable {
    var header: WireHeader?
    var created: Bool?
    var canceled: Bool?
    var compact_revision: EtcdInt?
    var cancel_reason: String?
    var events: [WireEvent]?
}

struct WireAuthRequest: Encodable {
    var name: String
    var password: String
}

struct WireAuthResponse: Decodable {
    var token: String?
}

struct WireStatusResponse: Decodable {
    var header: WireHeader?
    var version: String?
    var leader: String?
}

extension String {
    /// Base64 of the UTF-8 bytes.
    var base64: String { Data(utf8).base64EncodedString() }
}

extension Data {
    /// Base64 of the bytes.
    var base64: String { base64EncodedString() }
}
