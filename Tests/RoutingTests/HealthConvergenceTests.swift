@testable import Health
import Testing

@Suite("health convergence (what the gate waits for)")
struct HealthConvergenceTests {
    typealias C = HealthConvergence<String>

    static func state(_ healthy: Bool, probes: Int, streak: Int = 0) -> ProbeState {
        ProbeState(healthy: healthy, lastResult: healthy ? "ok" : "refused", lastLatencyMs: 0, lastCheck: nil, streak: streak, probes: probes)
    }

    static func inputs(_ s: [String: ProbeState?]) -> [C.Input] {
        s.sorted { $0.key < $1.key }.map { C.Input(target: $0.key, state: $0.value, rise: 2, fall: 3) }
    }

    @Test("start-up: converged once every target was probed fall times or is down")
    func startUp() {
        var c = C()
        #expect(c.update(Self.inputs(["a": Self.state(true, probes: 2), "b": Self.state(true, probes: 3)])) == .none)
        #expect(!c.converged)
        #expect(c.update(Self.inputs(["a": Self.state(true, probes: 3), "b": Self.state(false, probes: 3)])) == .converged)
        #expect(c.converged)
    }

    @Test("a target never probed keeps the node unconverged")
    func neverProbed() {
        var c = C()
        #expect(c.update(Self.inputs(["a": Self.state(true, probes: 9), "b": nil])) == .none)
        #expect(!c.converged)
    }

    @Test("every backend down, then one back: not converged until the others were re-probed rise + fall times")
    func isolationThenPartialView() {
        var c = C()
        _ = c.update(Self.inputs(["a": Self.state(true, probes: 5), "b": Self.state(true, probes: 5)]))
        #expect(c.converged)
        #expect(c.update(Self.inputs(["a": Self.state(false, probes: 8), "b": Self.state(false, probes: 8)])) == .isolated)
        #expect(c.isolated && c.converged)   // all down: the fail-open policy decides, not the convergence
        #expect(c.update(Self.inputs(["a": Self.state(true, probes: 10), "b": Self.state(false, probes: 10)])) == .reconverging)
        #expect(!c.converged && !c.isolated)
        // b is still down after 4 probes since a came back (rise + fall = 5): still waiting.
        #expect(c.update(Self.inputs(["a": Self.state(true, probes: 14), "b": Self.state(false, probes: 14, streak: 1)])) == .none)
        #expect(!c.converged)
        // b came back too: settled.
        #expect(c.update(Self.inputs(["a": Self.state(true, probes: 15), "b": Self.state(true, probes: 15)])) == .converged)
        #expect(c.converged)
    }

    @Test("a backend really dead after the others came back: converged after rise + fall probes")
    func deadBackendAfterIsolation() {
        var c = C()
        c.assumeConverged()
        _ = c.update(Self.inputs(["a": Self.state(false, probes: 3), "b": Self.state(false, probes: 3)]))
        _ = c.update(Self.inputs(["a": Self.state(true, probes: 5), "b": Self.state(false, probes: 5)]))
        #expect(!c.converged)
        #expect(c.update(Self.inputs(["a": Self.state(true, probes: 10), "b": Self.state(false, probes: 10)])) == .converged)
    }

    @Test("a healthy target with a failure pending is not settled after isolation")
    func pendingFailure() {
        var c = C()
        c.assumeConverged()
        _ = c.update(Self.inputs(["a": Self.state(false, probes: 3), "b": Self.state(false, probes: 3)]))
        _ = c.update(Self.inputs(["a": Self.state(true, probes: 5), "b": Self.state(true, probes: 5, streak: 1)]))
        #expect(!c.converged)
        #expect(c.update(Self.inputs(["a": Self.state(true, probes: 6), "b": Self.state(true, probes: 6)])) == .converged)
    }

    @Test("one backend down among healthy ones is not isolation")
    func oneDown() {
        var c = C()
        c.assumeConverged()
        #expect(c.update(Self.inputs(["a": Self.state(true, probes: 9), "b": Self.state(false, probes: 9)])) == .none)
        #expect(c.converged && !c.isolated)
    }
}
