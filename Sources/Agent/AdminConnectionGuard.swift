import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Counts the admin API's open connections against a cap.
final class AdminConnectionLimiter: Sendable {
    /// Most connections open at once.
    let cap: Int
    private let open = NIOLockedValueBox(0)

    init(cap: Int) { self.cap = cap }

    /// Takes a slot; false when all `cap` are in use.
    func admit() -> Bool {
        open.withLockedValue { n in
            guard n < cap else { return false }
            n += 1
            return true
        }
    }

    /// Gives a slot back.
    func release() { open.withLockedValue { $0 -= 1 } }
}

/// First handler of every admin connection: past the cap it answers
/// `503 Service Unavailable` itself and closes, so an extra connection costs
/// no HTTP state and the ones already open keep working.
final class AdminConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limiter: AdminConnectionLimiter
    private var decided = false
    private var admitted = false

    init(limiter: AdminConnectionLimiter) { self.limiter = limiter }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { decide(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        decide(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if admitted { context.fireChannelRead(data) }   // a refused connection's bytes go nowhere
    }

    func channelInactive(context: ChannelHandlerContext) {
        if admitted {
            admitted = false
            limiter.release()
        }
        context.fireChannelInactive()
    }

    private func decide(_ context: ChannelHandlerContext) {
        guard !decided else { return }
        decided = true
        if limiter.admit() {
            admitted = true
            return
        }
        let body = "too many admin connections (at most \(limiter.cap) open); try again later\n"
        let text = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text)), promise: nil)
        context.close(promise: nil)
    }
}

/// Hummingbird's HTTP/1.1 child channel with ``AdminConnectionGuard`` in front.
struct GuardedHTTP1Channel: ServerChildChannel {
    let base: HTTP1Channel
    let limiter: AdminConnectionLimiter

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        let limiter = self.limiter
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(AdminConnectionGuard(limiter: limiter))
        }.flatMap { self.base.setup(channel: channel, logger: logger) }
    }

    func handle(value: HTTP1Channel.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
