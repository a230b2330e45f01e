import ServiceLifecycle

/// A worker under swift-service-lifecycle: graceful shutdown drains the agent (running
/// tasks finish and report, none start), and the service ends when it has drained.
public struct WorkerService: Service {
    public let agent: WorkerAgent

    public init(agent: WorkerAgent) { self.agent = agent }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await agent.run()
        } onGracefulShutdown: {
            agent.drain()
        }
    }
}
