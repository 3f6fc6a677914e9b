import Maglev

/// What the agent keeps of a VIP's Maglev ring once it is in the data plane:
/// enough for status, the cluster's table digests and second chance, without
/// the M slots themselves (the kernel has those).
public struct RingSummary: Sendable, Equatable {
    /// The ring size M.
    public var size: Int
    /// The backends in the ring (weight > 0, down ones included: they have
    /// no slot), sorted as Maglev sorts them.
    public var backends: [String]
    /// Their weights, in the same order.
    public var weights: [UInt32]
    /// The slots of down backends handed over to up ones, with their owners in
    /// the table of every backend (``MaglevTable/overlay``): what lets a health
    /// change hand over slots again without building the table.
    public var overlay: MaglevOverlay
    /// Slots per backend identity (every backend of ``backends`` appears).
    public var slotCounts: [String: Int]
    /// ``MaglevTable/digest`` of the table.
    public var digest: String

    /// The summary of `table` from what ``MaglevTable/exportSlots(values:into:)`` gave.
    public init(_ table: MaglevTable, export: MaglevTable.SlotExport) {
        size = table.size
        backends = table.backends.map(\.identity)
        weights = table.backends.map(\.weight)
        overlay = table.overlay
        slotCounts = export.slotCounts
        digest = export.digest
    }

    /// Both put the same backend in every slot (same size, backends and digest).
    public func sameRing(as other: RingSummary) -> Bool {
        size == other.size && backends == other.backends && digest == other.digest
    }
}

extension VIPState {
    /// The Maglev table of the ring in place, built again from the VIP's config
    /// and down set (the controller keeps only a ``RingSummary``); nil when the
    /// VIP has no ring. For tests, tools and benchmarks: O(M) per call.
    public func rebuiltTable() -> MaglevTable? {
        guard ring != nil else { return nil }
        return try? MaglevTable(backends: config.maglevBackends(), size: config.ringSize, down: Set(down.map(\.description)))
    }
}
