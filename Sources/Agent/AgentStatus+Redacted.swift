extension AgentStatus {
    /// The status for a reader who is not trusted with secrets (a TCP client
    /// without the admin token): no hash seed (it predicts backends and
    /// buckets), no file paths, and no error text (it may quote paths).
    public func redacted() -> AgentStatus {
        var s = self
        s.node.hashSeed = nil
        s.node.bpffs = nil
        s.node.configFile = nil
        if s.node.lastReconcileError != nil { s.node.lastReconcileError = "failed (details need the admin token)" }
        if s.announcements?.routeError != nil { s.announcements?.routeError = "failed (details need the admin token)" }
        s.node.redacted = true
        return s
    }
}
