import BPF
import CXdplb

extension Agent {
    /// Nil while the program is attached through our link and its pins exist;
    /// otherwise what is gone, in words an operator can act on.
    func detachmentProblem() -> String? {
        if !dataPlane.isAttached() {
            return "the balancer program is no longer attached to \(config.node.interface) (was 'xdplb down --force' run?); restart the agent to attach it again"
        }
        if !BPFFS.exists("\(dataPlane.directory)/\(XDPLB_PIN_LINK)") {
            return "the pinned link \(dataPlane.directory)/\(XDPLB_PIN_LINK) is gone (unpinned behind the agent's back); restart the agent"
        }
        return nil
    }

    /// Re-checks the attachment; logs and counts the moment it is lost (and if it comes back).
    /// - Returns: the problem, nil while attached.
    @discardableResult
    public func checkAttachment() -> String? {
        let problem = detachmentProblem()
        if problem != nil && detached == nil {
            logger.critical("data plane lost: no program reads the maps any more", metadata: ["error": "\(problem!)"])
            events["detached", default: 0] += 1
        } else if problem == nil && detached != nil {
            logger.notice("data plane attached again")
        }
        detached = problem
        return problem
    }

    /// Throws while the data plane is detached: a change to maps no program reads is no success.
    func requireAttached() throws {
        if let problem = checkAttachment() { throw AgentError("refused: \(problem)") }
    }
}
