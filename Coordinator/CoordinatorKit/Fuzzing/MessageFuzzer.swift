import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Wire

/// Drives a running coordinator's cluster port with well-formed envelopes of every body
/// type, random field values and random orders (before Hello, Hello twice, Hello with the
/// wrong version, role or name), from certificates of every role, over several connections
/// at once. The frame decoder has its own fuzzer (``FrameFuzzer``); this one starts where
/// framing succeeded.
///
/// Each connection follows a script that depends only on the seed and the connection's
/// number (``script(seed:connection:peers:)``). The script carries, for every message, what
/// the protocol promises in answer — written here from tower.proto's rules, not taken from
/// the coordinator's code — so a run checks more than "no crash": every request with an id
/// gets a frame with that id within the reply timeout (else a hang), of the promised kind
/// (else a mismatch), and a refused Hello closes the connection after its error frame.
public enum MessageFuzzer {
    /// A certificate the fuzzer may connect with.
    /// The certificates a fuzz target issues besides the operator's and the real worker's:
    /// two workers (to hold and to steal leases) and a gateway.
    public static let certificates: [(String, ClusterRole)] = [("fuzz-w1", .worker), ("fuzz-w2", .worker), ("fuzz-gw", .gateway)]

    /// The operator and every fuzz certificate of `cluster`, as peers.
    public static func peers(of cluster: LocalCluster) throws -> [Peer] {
        try (["operator"] + certificates.map(\.0)).map { try Peer(identity: cluster.identity($0)) }
    }

    public struct Peer: Sendable {
        public let role: ClusterRole
        public let name: String
        public let identity: TLSIdentity

        public init(identity: TLSIdentity) throws {
            guard let role = identity.role else { throw WireError.invalidArgument("fuzz certificate \(identity.name) has no role") }
            self.role = role
            self.name = identity.name
            self.identity = identity
        }
    }

    /// What the protocol promises in answer to one message.
    public enum Expectation: Equatable, Sendable {
        /// No frame carries this request id (results, progress, acks and errors from peers).
        case silent
        /// A frame with this body (by ``Permissions/name(of:)``).
        case reply(String)
        /// An error frame with this code.
        case error(WireErrorCode)
        /// An answer, of whatever kind: the outcome depends on the coordinator's state.
        case answer
        /// An error frame with this code, then the coordinator closes the connection.
        case closeWith(WireErrorCode)
    }

    public struct Step: Equatable, Sendable {
        public var envelope: WireEnvelope
        public var expect: Expectation
    }

    public struct Script: Equatable, Sendable {
        public var peer: Int
        public var steps: [Step]
        /// Whether a valid Hello was accepted by the end of the script (decides what the
        /// closing probe is answered with).
        public var helloAccepted: Bool
    }

    public struct Options: Sendable {
        public var messages: Int
        public var concurrency: Int
        public var seed: UInt64
        /// Longest wait for any one promised answer or close before it counts as a hang.
        public var replyTimeout: Duration
        public var maxMessagesPerConnection: Int

        public init(messages: Int, concurrency: Int = 8, seed: UInt64 = 0x70E7, replyTimeout: Duration = .seconds(20), maxMessagesPerConnection: Int = 80) {
            self.messages = messages
            self.concurrency = concurrency
            self.seed = seed
            self.replyTimeout = replyTimeout
            self.maxMessagesPerConnection = maxMessagesPerConnection
        }
    }

    public struct Stats: Sendable, CustomStringConvertible {
        public var connections = 0
        public var connectionsByRole: [String: Int] = [:]
        public var messages = 0
        public var sentByKind: [String: Int] = [:]
        /// Requests with an id that were promised an answer, and how many got one.
        public var promised = 0
        public var answered = 0
        public var answersByKind: [String: Int] = [:]
        public var errorsByCode: [String: Int] = [:]
        /// Connections the coordinator closed after a refused Hello, as promised.
        public var closedAsPromised = 0
        public var jobsAccepted = 0
        /// Tasks the coordinator leased to fuzzing workers, and results sent for them.
        public var tasksReceived = 0
        public var resultsForLeasedTasks = 0
        /// Promised answers or closes that did not come within the reply timeout.
        public var hangs = 0
        /// Answers of the wrong kind, answers to messages that expect none, connections
        /// closed without a promise to.
        public var mismatches = 0
        public var connectFailures = 0
        /// The first few problems, each with the connection and message that showed it.
        public var problems: [String] = []

        mutating func problem(_ text: String) {
            if problems.count < 30 { problems.append(text) }
        }

        public init() {}

        public mutating func merge(_ other: Stats) {
            connections += other.connections
            connectionsByRole.merge(other.connectionsByRole, uniquingKeysWith: +)
            messages += other.messages
            sentByKind.merge(other.sentByKind, uniquingKeysWith: +)
            promised += other.promised
            answered += other.answered
            answersByKind.merge(other.answersByKind, uniquingKeysWith: +)
            errorsByCode.merge(other.errorsByCode, uniquingKeysWith: +)
            closedAsPromised += other.closedAsPromised
            jobsAccepted += other.jobsAccepted
            tasksReceived += other.tasksReceived
            resultsForLeasedTasks += other.resultsForLeasedTasks
            hangs += other.hangs
            mismatches += other.mismatches
            connectFailures += other.connectFailures
            for p in other.problems { problem(p) }
        }

        public var description: String {
            func list(_ d: [String: Int]) -> String { d.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }
            var lines = [
                "\(messages) messages over \(connections) connections (\(list(connectionsByRole))); \(connectFailures) failed to connect",
                "\(answered) of \(promised) promised answers; \(closedAsPromised) closed after a refused Hello; \(hangs) hangs; \(mismatches) mismatches",
                "\(jobsAccepted) jobs accepted; \(tasksReceived) tasks leased to fuzzing workers, \(resultsForLeasedTasks) results sent for them",
                "sent: \(list(sentByKind))",
                "answers: \(list(answersByKind))",
                "errors: \(list(errorsByCode))",
            ]
            lines += problems.map { "  problem: \($0)" }
            return lines.joined(separator: "\n")
        }
    }

    // MARK: Symbols the runner resolves at send time

    /// A job id the coordinator accepted earlier in the run (from any connection); the
    /// script is deterministic, the id it stands for is whatever the coordinator chose.
    static let acceptedJobMarker = "\u{1}accepted-job"
    /// A task the coordinator leased to this connection, with the attempt it gave.
    static let leasedTaskMarker: UInt64 = 0xFFFF_FFFF_FFFF_FF00

    /// Addresses of the blobs echo jobs with these `blob_bytes` store, so blob requests
    /// sometimes name a blob that exists.
    static let echoBlobSizes: [UInt32] = [1, 4096]
    static let knownBlobs: [String] = echoBlobSizes.map { BlobStore.sha256Hex(WireEchoSpec.payload(index: -1, bytes: Int($0))) }

    // MARK: Scripts

    /// Every body type of the envelope, by name. ``expectation`` switches over the bodies
    /// exhaustively, so a new message in tower.proto does not compile until it is here.
    public static let bodyNames = ["Hello", "Welcome", "Error", "Heartbeat", "Ack", "TaskBatch", "ResultBatch", "CancelTasks", "Drain",
                                   "ProgressBatch", "BlobRequest", "BlobChunk", "SubmitJob", "JobAccepted", "ListJobs", "JobList",
                                   "GetJob", "JobSummary", "ListWorkers", "WorkerList", "CancelJob", "GetTaskResults", "TaskResultList",
                                   "ListRuns", "RunList", "ListExperiments", "ExperimentList", "ListModels", "ModelList", "GetModel", "ModelDetail", "Promote", "Rollback",
                                   "PromotionResult", "Subscribe", "PromotionEvent", "RerunRun", "Ingest", "IngestResult",
                                   "GetRecommendations", "RecommendationList", "BuildTrainingSet", "TrainingSetInfo", "EventBatch",
                                   "EventsAccepted", "ListPipelines", "PipelineList", "ListPipelineRuns", "PipelineRunList",
                                   "TriggerPipeline", "PipelineRunInfo", "GetDriftReport", "DriftReportInfo", "GetServingSnapshot",
                                   "ServingSnapshot", "ListShorts", "ShortList", "GetShort", "ShortInfo", "ApproveShort"]

    /// The messages each role may send, as DESIGN.md states them: every role says Hello,
    /// heartbeats, acks and fetches blobs; workers report; operators run the cluster;
    /// gateways read models. Everything else only the coordinator sends.
    static let mayBeSent: [ClusterRole: Set<String>] = {
        let everyone: Set<String> = ["Hello", "Heartbeat", "Error", "Ack", "BlobRequest"]
        return [
            .worker: everyone.union(["ResultBatch", "Drain", "BlobChunk", "ProgressBatch"]),
            .operator: everyone.union(["SubmitJob", "CancelJob", "Promote", "Rollback", "RerunRun", "ListJobs", "GetJob", "ListWorkers",
                                       "GetTaskResults", "ListRuns", "ListExperiments", "ListModels", "GetModel", "Subscribe", "BlobChunk", "Ingest",
                                       "BuildTrainingSet", "EventBatch", "GetRecommendations", "ListPipelines", "ListPipelineRuns",
                                       "TriggerPipeline", "GetDriftReport", "GetServingSnapshot", "ListShorts", "GetShort",
                                       "ApproveShort"]),
            .gateway: everyone.union(["ListModels", "GetModel", "Subscribe", "EventBatch", "GetRecommendations", "GetServingSnapshot"]),
            .coordinator: everyone,
        ]
    }()

    /// The script of connection `connection`: which certificate it uses and what it sends.
    public static func script(seed: UInt64, connection: Int, peers: [Peer], maxMessages: Int = 80) -> Script {
        var rng = FuzzRandom(seed: seed ^ (UInt64(connection) &* 0xA24B_AED4_963E_E407))
        let peerIndex = rng.below(peers.count)
        let peer = peers[peerIndex]
        let count = 1 + rng.below(maxMessages)
        // Where the valid Hello goes: first (most connections, so the deep paths are
        // reached), after some messages, twice, or never.
        let plan = rng.below(10)
        let helloAt: Int? = plan < 5 ? 0 : plan < 7 ? rng.below(count) : plan < 8 ? nil : 0
        let secondHello = plan == 9
        var steps: [Step] = []
        var helloDone = false
        let allowed = Array(mayBeSent[peer.role, default: []]).sorted()
        for index in 0..<count {
            let body: WireEnvelope.Body
            if index == helloAt || (secondHello && index == 1) {
                body = .hello(hello(&rng, peer: peer, valid: !rng.chance(6)))
            } else {
                // Mostly messages the role may send, so they get past the permission check.
                let name = rng.chance(3) ? rng.pick(bodyNames) : rng.pick(allowed)
                body = randomBody(name, &rng, peer: peer)
            }
            // Unique per connection, random in the high bits, sometimes 0 (unsolicited).
            let requestID: UInt64 = rng.chance(10) ? 0 : (UInt64(index + 1) | (rng.next() << 20))
            let (expect, accepted) = expectation(for: body, requestID: requestID, peer: peer, helloDone: helloDone)
            helloDone = accepted
            steps.append(Step(envelope: WireEnvelope(requestID: requestID, body), expect: expect))
            if case .closeWith = expect { break }
        }
        return Script(peer: peerIndex, steps: steps, helloAccepted: helloDone)
    }

    /// What the coordinator promises in answer to `body`, and whether Hello has been
    /// accepted afterwards. From tower.proto and DESIGN.md: a message the role may not send
    /// is forbidden; nothing but Hello is served before Hello; a Hello of another version,
    /// another role than the certificate's or another name is refused and the connection
    /// closed; every request is answered, with an error frame if it fails.
    static func expectation(for body: WireEnvelope.Body, requestID: UInt64, peer: Peer, helloDone: Bool) -> (Expectation, Bool) {
        let name = Permissions.name(of: body)
        guard mayBeSent[peer.role, default: []].contains(name) else { return (.error(.forbidden), helloDone) }
        if !helloDone {
            guard case let .hello(hello) = body else { return (.error(.invalidArgument), false) }
            if hello.protocolVersion != WireProtocol.version { return (.closeWith(.versionMismatch), false) }
            if hello.role != peer.role.wire { return (.closeWith(.forbidden), false) }
            if !hello.name.isEmpty && hello.name != peer.name { return (.closeWith(.forbidden), false) }
            return (.reply("Welcome"), true)
        }
        let ack: Expectation = requestID == 0 ? .silent : .reply("Ack")
        switch body {
        case .hello: return (.error(.invalidArgument), true)
        case .heartbeat, .drain, .subscribe: return (ack, true)
        case .results, .progress, .ack, .error: return (.silent, true)
        case let .blobRequest(request):
            // An address is 64 lowercase ASCII hex digits (SHA-256); anything else is refused.
            let isAddress = request.sha256.utf8.count == 64 && request.sha256.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
            return (isAddress ? .answer : .error(.invalidArgument), true)
        case let .blobChunk(chunk):
            guard peer.role == .operator else { return (.error(.invalidArgument), true) }
            // An operator's upload: the first chunk of a blob that is not yet complete waits
            // silently for the next; everything else is answered (an Ack, or why not).
            let firstOfMany = chunk.offset == 0 && !chunk.last && chunk.totalSize <= UInt64(2 << 30) && UInt64(chunk.data.count) <= chunk.totalSize
            return (firstOfMany ? .silent : .answer, true)
        case .ingest, .buildTrainingSet, .events, .getRecommendations, .listPipelines, .listPipelineRuns, .triggerPipeline, .getDriftReport,
             .getServingSnapshot, .getShort, .approveShort:
            return (.answer, true)
        case .listShorts: return (.reply("ShortList"), true)
        case .listJobs: return (.reply("JobList"), true)
        case .listWorkers: return (.reply("WorkerList"), true)
        case .listModels: return (.reply("ModelList"), true)
        case .listExperiments: return (.reply("ExperimentList"), true)
        case let .listRuns(request): return (request.experiment.isEmpty ? .error(.invalidArgument) : .answer, true)
        case .submitJob, .getJob, .cancelJob, .getTaskResults, .getModel, .promote, .rollback, .rerunRun:
            return (.answer, true)
        case .welcome, .tasks, .cancelTasks, .jobAccepted, .jobList, .job, .workerList, .taskResults, .runList, .experimentList, .modelList,
             .modelDetail, .promotionResult, .promotionEvent, .ingestResult, .recommendationList, .trainingSet, .eventsAccepted,
             .pipelineList, .pipelineRunList, .pipelineRun, .driftReport, .servingSnapshot, .shortList, .short:
            // Unreachable: no role may send these (refused above).
            return (.error(.forbidden), true)
        }
    }

    static func hello(_ rng: inout FuzzRandom, peer: Peer, valid: Bool) -> WireHello {
        var h = WireHello()
        h.protocolVersion = WireProtocol.version
        h.role = peer.role.wire
        h.name = rng.bool() ? "" : peer.name
        h.capabilities = capabilities(&rng)
        h.binaryVersion = rng.bool() ? WireProtocol.binaryVersion : rng.string()
        if !valid {
            switch rng.below(4) {
            case 0: h.protocolVersion = rng.pick([0, 2, .max, UInt32(rng.below(1000)) + 2])
            case 1: h.role = rng.pick([.unspecified, .coordinator, .worker, .operator, .gateway, WireRole(rawValue: 77)!].filter { $0 != peer.role.wire })
            case 2: h.name = peer.name + rng.pick(["x", " ", "\u{0}", "é", "-2"])
            default: h.name = rng.string().isEmpty ? "someone-else" : "other-" + rng.string()
            }
        }
        return h
    }

    static func capabilities(_ rng: inout FuzzRandom) -> WireCapabilities {
        var c = WireCapabilities()
        c.cores = rng.uint32()
        c.memoryBytes = rng.uint64()
        c.slots = rng.pick([0, 1, 2, 64, rng.uint32()])
        c.jobKinds = (0..<rng.below(4)).map { _ in rng.pick(["echo", "hpo", "echo", rng.string()]) }
        c.tools = (0..<rng.below(3)).map { _ in rng.pick(["ffmpeg", "espeak-ng", rng.string()]) }
        for _ in 0..<rng.below(4) { c.labels[rng.string()] = rng.string() }
        for _ in 0..<rng.below(2) { c.toolVersions[rng.string()] = rng.string() }
        return c
    }

    /// A task id: one of the coordinator's (ids are small and sequential in a fresh store),
    /// one leased to this connection, or any.
    static func taskID(_ rng: inout FuzzRandom) -> UInt64 {
        switch rng.below(4) {
        case 0, 1: return UInt64(1 + rng.below(400))
        case 2: return leasedTaskMarker
        default: return rng.uint64()
        }
    }

    static func jobID(_ rng: inout FuzzRandom) -> String {
        rng.below(3) == 0 ? rng.string() : acceptedJobMarker
    }

    static func randomBody(_ name: String, _ rng: inout FuzzRandom, peer: Peer) -> WireEnvelope.Body {
        switch name {
        case "Hello": return .hello(hello(&rng, peer: peer, valid: rng.bool()))
        case "Welcome":
            return .welcome(.with { $0.protocolVersion = rng.uint32(); $0.sessionID = rng.string(); $0.heartbeatIntervalMs = rng.uint32(); $0.maxFrameBytes = rng.uint64() })
        case "Error": return .error(.with { $0.code = WireErrorCode(rawValue: rng.below(14))!; $0.message = rng.string() })
        case "Heartbeat": return .heartbeat(.with { $0.runningTaskIds = (0..<rng.below(5)).map { _ in taskID(&rng) } })
        case "Ack": return .ack(WireAck())
        case "TaskBatch":
            return .tasks(.with { $0.tasks = (0..<rng.below(3)).map { _ in .with { t in
                t.taskID = taskID(&rng); t.jobID = jobID(&rng); t.attempt = rng.uint32(); t.kind = rng.string(); t.input = rng.data(); t.blobs = [rng.hash()]
            } } })
        case "ResultBatch":
            return .results(.with { $0.outcomes = (0..<(1 + rng.below(4))).map { _ in outcome(&rng) } })
        case "CancelTasks": return .cancelTasks(.with { $0.taskIds = [taskID(&rng)]; $0.reason = rng.string(); $0.stopEarly = rng.bool() })
        case "Drain": return .drain(WireDrain())
        case "ProgressBatch":
            return .progress(.with { $0.progress = (0..<(1 + rng.below(3))).map { _ in .with { p in
                p.taskID = taskID(&rng); p.attempt = rng.pick([0, 1, 2, rng.uint32()]); p.step = rng.uint32()
                for _ in 0..<rng.below(4) { p.metrics[rng.pick(["valid_auc", "holdout_auc", "logloss", rng.string()])] = rng.double() }
            } } })
        case "BlobRequest": return .blobRequest(.with { $0.sha256 = rng.chance(3) ? rng.pick(knownBlobs) : rng.hash() })
        case "BlobChunk":
            return .blobChunk(.with { $0.sha256 = rng.hash(); $0.offset = rng.uint64(); $0.totalSize = rng.uint64(); $0.data = rng.data(); $0.last = rng.bool() })
        case "SubmitJob": return .submitJob(.with { $0.spec = jobSpec(&rng) })
        case "JobAccepted": return .jobAccepted(.with { $0.jobID = rng.string(); $0.tasks = rng.uint32() })
        case "ListJobs": return .listJobs(.with { $0.limit = rng.uint32() })
        case "JobList": return .jobList(.with { $0.jobs = [summary(&rng)] })
        case "GetJob": return .getJob(.with { $0.jobID = jobID(&rng) })
        case "JobSummary": return .job(summary(&rng))
        case "ListWorkers": return .listWorkers(WireListWorkers())
        case "WorkerList":
            return .workerList(.with { $0.workers = [.with { w in w.name = rng.string(); w.sessionID = rng.string(); w.capabilities = capabilities(&rng) }] })
        case "CancelJob": return .cancelJob(.with { $0.jobID = jobID(&rng) })
        case "GetTaskResults": return .getTaskResults(.with { $0.jobID = jobID(&rng) })
        case "TaskResultList":
            return .taskResults(.with { $0.results = [.with { r in r.index = rng.uint32(); r.worker = rng.string(); r.output = rng.data() }] })
        case "ListRuns":
            return .listRuns(.with { $0.experiment = rng.pick(["fuzz", "", rng.string()]); $0.sortBy = rng.pick(["", "valid_auc", rng.string()]); $0.ascending = rng.bool() })
        case "RunList": return .runList(.with { $0.runs = [.with { r in r.id = rng.string(); r.metrics = ["m": rng.double()] }] })
        case "ListExperiments": return .listExperiments(WireListExperiments())
        case "ExperimentList": return .experimentList(.with { $0.experiments = [.with { e in e.name = rng.string(); e.runs = rng.uint32() }] })
        case "ListModels": return .listModels(WireListModels())
        case "ModelList": return .modelList(.with { $0.models = [.with { m in m.name = rng.string(); m.versions = rng.uint32() }] })
        case "GetModel": return .getModel(.with { $0.name = rng.pick(["match", rng.string()]) })
        case "ModelDetail": return .modelDetail(.with { $0.name = rng.string(); $0.aliases = [rng.string(): rng.uint32()] })
        case "Promote":
            return .promote(.with { $0.name = rng.pick(["match", rng.string()]); $0.version = rng.uint32(); $0.reason = rng.string(); $0.alias = rng.pick(["", "champion", rng.string()]) })
        case "Rollback":
            return .rollback(.with { $0.name = rng.pick(["match", rng.string()]); $0.reason = rng.string(); $0.alias = rng.pick(["", "champion", rng.string()]) })
        case "PromotionResult": return .promotionResult(.with { $0.decision.version = rng.uint32(); $0.decision.reasons = [rng.string()] })
        case "Subscribe": return .subscribe(.with { $0.models = (0..<rng.below(3)).map { _ in rng.string() } })
        case "PromotionEvent":
            return .promotionEvent(.with { $0.model = rng.string(); $0.version = rng.uint32(); $0.sha256 = rng.hash(); $0.atMs = Int64(bitPattern: rng.uint64()) })
        case "Ingest":
            return .ingest(.with { $0.table = rng.pick(["users", "listings", "events", rng.string()]); $0.sha256 = rng.pick(knownBlobs + [rng.hash(), rng.string()]); $0.fileName = rng.string() })
        case "IngestResult": return .ingestResult(.with { $0.rows = rng.uint64(); $0.table = rng.string() })
        case "GetRecommendations": return .getRecommendations(.with { $0.userID = rng.pick([1, 2, rng.uint64()]); $0.jobID = rng.pick(["", rng.string()]) })
        case "RecommendationList": return .recommendationList(.with { $0.userID = rng.uint64(); $0.items = [.with { i in i.listingID = rng.uint64(); i.reasons = [rng.string()] }] })
        case "BuildTrainingSet":
            return .buildTrainingSet(.with { $0.definition = .with { d in d.fromMs = Int64(bitPattern: rng.uint64()); d.toMs = rng.pick([0, Int64(bitPattern: rng.uint64())]); d.labelWindowSeconds = rng.uint32() } })
        case "TrainingSetInfo": return .trainingSet(.with { $0.sha256 = rng.hash(); $0.rows = rng.uint64() })
        case "EventBatch":
            return .events(.with { $0.events = (0..<rng.below(4)).map { _ in .with { e in
                e.eventID = rng.string(); e.userID = rng.pick([1, rng.uint64()]); e.listingID = rng.pick([1, rng.uint64()])
                e.type = rng.pick(["click", "impression", rng.string()]); e.eventTimeMs = Int64(bitPattern: rng.uint64())
            } } })
        case "EventsAccepted": return .eventsAccepted(.with { $0.inserted = rng.uint64() })
        case "ListPipelines": return .listPipelines(WireListPipelines())
        case "PipelineList": return .pipelineList(.with { $0.pipelines = [.with { p in p.name = rng.string() }] })
        case "ListPipelineRuns": return .listPipelineRuns(.with { $0.pipeline = rng.pick(["retrain", rng.string()]); $0.limit = rng.uint32() })
        case "PipelineRunList": return .pipelineRunList(.with { $0.runs = [.with { r in r.runID = rng.string() }] })
        case "TriggerPipeline": return .triggerPipeline(.with { $0.pipeline = rng.pick(["retrain", rng.string()]); $0.reason = rng.string() })
        case "PipelineRunInfo": return .pipelineRun(.with { $0.runID = rng.string(); $0.state = rng.string() })
        case "GetDriftReport": return .getDriftReport(.with { $0.reportID = rng.pick(["", rng.string()]) })
        case "DriftReportInfo": return .driftReport(.with { $0.reportID = rng.string(); $0.reportJson = rng.string() })
        case "GetServingSnapshot": return .getServingSnapshot(.with { $0.knownSha256 = rng.pick(["", rng.hash()]) })
        case "ServingSnapshot": return .servingSnapshot(.with { $0.sha256 = rng.hash(); $0.users = rng.uint32() })
        case "ListShorts": return .listShorts(WireListShorts())
        case "ShortList": return .shortList(.with { $0.shorts = [.with { s in s.id = rng.string(); s.sha256 = rng.hash() }] })
        case "GetShort": return .getShort(.with { $0.id = rng.pick(["short-job-0", rng.string()]) })
        case "ShortInfo": return .short(.with { $0.id = rng.string(); $0.state = rng.string() })
        case "ApproveShort": return .approveShort(.with { $0.id = rng.pick(["short-job-0", rng.string()]); $0.dryRun = rng.pick([true, false]) })
        default: return .rerunRun(.with { $0.runID = rng.string() })
        }
    }

    static func outcome(_ rng: inout FuzzRandom) -> WireTaskOutcome {
        var o = WireTaskOutcome()
        o.taskID = taskID(&rng)
        o.attempt = rng.pick([0, 1, 2, rng.uint32()])
        o.durationUs = rng.uint64()
        switch rng.below(4) {
        case 0, 1:
            // Sometimes what an echo task would return, so results get past parsing.
            o.output = rng.bool() ? rng.data() : ((try? WireEchoOutput.with { $0.payload = rng.data(); $0.worker = rng.string() }.serializedData()) ?? Data())
        case 2: o.failure = .with { $0.message = rng.string(); $0.retryable = rng.bool() }
        default: break
        }
        return o
    }

    static func summary(_ rng: inout FuzzRandom) -> WireJobSummary {
        .with { $0.jobID = rng.string(); $0.state = WireJobState(rawValue: rng.below(8))!; $0.total = rng.uint32(); $0.summary = rng.data(); $0.summaryLines = [rng.string()] }
    }

    /// A job of a known kind (sometimes), with a spec in binary, in JSON or as noise, whose
    /// numbers sit on and beyond every limit. Combinations that are valid stay small (a few
    /// tasks, small payloads, short sleeps), so the memory measured afterwards shows leaks,
    /// not a legitimately large job.
    static func jobSpec(_ rng: inout FuzzRandom) -> WireJobSpec {
        var spec = WireJobSpec()
        spec.kind = rng.pick([JobKind.echo, JobKind.echo, JobKind.echo, JobKind.echo, JobKind.echo, "hpo", "", "ECHO", rng.string()])
        spec.name = rng.string()
        spec.maxAttempts = rng.pick([0, 1, 3, rng.uint32()])
        switch rng.below(6) {
        case 0, 1, 2:
            if spec.kind == "hpo" {
                spec.spec = (try? WireHPOSpec.with {
                    $0.experiment = rng.pick(["fuzz", rng.string()]); $0.modelName = rng.pick(["match", rng.string()])
                    $0.space = rng.pick(["", "{}", "max_trials: 2", "model: gbdt\nmax_trials: -1", rng.json(fields: ["max_trials", "params"]), rng.string()])
                    $0.dataset = rng.data(); $0.promotion = rng.pick(["", "margin: NaN", rng.string()])
                    $0.datasetSha256 = rng.chance(3) ? rng.pick(knownBlobs) : rng.hash(); $0.rerunOf = rng.string()
                }.serializedData()) ?? Data()
            } else {
                spec.spec = (try? echoSpec(&rng).serializedData()) ?? Data()
            }
        case 3:
            spec.spec = Data(rng.json(fields: ["tasks", "payloadBytes", "payload_bytes", "sleepMs", "blobBytes", "failIndexPlusOne",
                                               "experiment", "space", "dataset"]).utf8)
        case 4: spec.spec = rng.data()
        default: spec.spec = Data()
        }
        return spec
    }

    static func echoSpec(_ rng: inout FuzzRandom) -> WireEchoSpec {
        var e = WireEchoSpec()
        if rng.bool() {
            // A job the coordinator accepts, so tasks reach the fuzzing workers.
            e.tasks = UInt32(1 + rng.below(8))
            e.payloadBytes = rng.pick([0, 16, 64])
            e.sleepMs = rng.pick([0, 5])
            e.blobBytes = rng.pick([0, 0, echoBlobSizes[0], echoBlobSizes[1]])
            e.failIndexPlusOne = rng.pick([0, 0, 1])
            return e
        }
        let limit = UInt32(EchoPlanner.maxTasks)
        e.tasks = rng.pick([0, 1, 2, 3, 7, 20, limit + 1, limit + 1 + UInt32(rng.below(1 << 20)), .max])
        e.payloadBytes = rng.pick([0, 1, 64, 4096, UInt32(EchoPlanner.maxPayloadBytes) + 1, .max])
        if rng.chance(6) {
            // Each number within its own limit, their product far beyond memory.
            e.tasks = rng.pick([1000, limit])
            e.payloadBytes = UInt32(EchoPlanner.maxPayloadBytes)
        }
        e.sleepMs = rng.pick([0, 1, 20, UInt32(EchoPlanner.maxSleepMs) + 1, .max])
        e.blobBytes = rng.pick([0, 0, echoBlobSizes[0], echoBlobSizes[1], UInt32(EchoPlanner.maxBlobBytes) + 1, .max])
        e.failIndexPlusOne = rng.pick([0, 0, 1, 2, .max])
        return e
    }

    // MARK: Running

    /// Runs scripts 0, 1, 2, ... against `host:port`, `options.concurrency` connections at a
    /// time, until `options.messages` messages were sent.
    public static func run(host: String, port: Int, peers: [Peer], options: Options, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> Stats {
        precondition(!peers.isEmpty)
        let contexts = try peers.map { try $0.identity.makeClientContext() }
        let shared = Shared()
        let scripts = ScriptQueue(seed: options.seed, peers: peers, messages: options.messages, maxPerConnection: options.maxMessagesPerConnection)
        return await withTaskGroup(of: Stats.self) { group_ in
            for _ in 0..<max(1, options.concurrency) {
                group_.addTask {
                    var stats = Stats()
                    while let (index, script) = scripts.next() {
                        let peer = peers[script.peer]
                        let one = await drive(script, index: index, peer: peer, context: contexts[script.peer], host: host, port: port,
                                              shared: shared, timeout: options.replyTimeout, group: group)
                        stats.merge(one)
                    }
                    return stats
                }
            }
            var total = Stats()
            for await stats in group_ { total.merge(stats) }
            return total
        }
    }

    /// Hands out scripts in order until the message budget is spent.
    final class ScriptQueue: @unchecked Sendable {
        private let lock = NIOLock()
        private var nextIndex = 0
        private var sent = 0
        let seed: UInt64, peers: [Peer], messages: Int, maxPerConnection: Int

        init(seed: UInt64, peers: [Peer], messages: Int, maxPerConnection: Int) {
            self.seed = seed; self.peers = peers; self.messages = messages; self.maxPerConnection = maxPerConnection
        }

        func next() -> (Int, Script)? {
            let index: Int? = lock.withLock {
                guard sent < messages else { return nil }
                defer { nextIndex += 1 }
                return nextIndex
            }
            guard let index else { return nil }
            let script = MessageFuzzer.script(seed: seed, connection: index, peers: peers, maxMessages: maxPerConnection)
            lock.withLock { sent += script.steps.count }
            return (index, script)
        }
    }

    /// What connections share: the job ids the coordinator accepted.
    final class Shared: @unchecked Sendable {
        private let lock = NIOLock()
        private var jobs: [String] = []
        func add(job: String) { lock.withLock { if jobs.count < 1000 { jobs.append(job) } } }
        func job(_ pick: UInt64) -> String? { lock.withLock { jobs.isEmpty ? nil : jobs[Int(pick % UInt64(jobs.count))] } }
    }

    /// Plays one script on its own connection and checks every promise it carries.
    static func drive(_ script: Script, index: Int, peer: Peer, context: NIOSSLContext, host: String, port: Int, shared: Shared,
                      timeout: Duration, group: EventLoopGroup) async -> Stats {
        var stats = Stats()
        stats.connections = 1
        stats.connectionsByRole[peer.role.rawValue] = 1
        let label = "connection \(index) (\(peer.role.rawValue) \(peer.name))"
        let connection: FuzzWireConnection
        do {
            connection = try await FuzzWireConnection.connect(host: host, port: port, context: context, group: group)
        } catch {
            stats.connectFailures = 1
            stats.problem("\(label): could not connect: \(error)")
            return stats
        }
        defer { connection.close() }
        var resolver = FuzzRandom(seed: UInt64(index))
        var promised: [(step: Int, rid: UInt64)] = []
        var closeExpected = false
        var abandoned = false

        for (n, step) in script.steps.enumerated() {
            // Bound what is outstanding: a coordinator that stops answering shows up as a
            // hang here, not as an ever-growing backlog.
            if promised.count - connection.answeredCount(promised.map(\.rid)) >= 16 {
                let rids = promised.map(\.rid)
                if !(await connection.wait(timeout) { connection.answeredCount(rids) > rids.count - 16 }) {
                    abandoned = true
                    break
                }
            }
            if connection.isClosed { break }
            var envelope = step.envelope
            resolve(&envelope, connection: connection, shared: shared, rng: &resolver, stats: &stats)
            do { try await connection.send(envelope) } catch {
                if !connection.isClosed { stats.mismatches += 1; stats.problem("\(label): write failed at message \(n): \(error)") }
                break
            }
            stats.messages += 1
            stats.sentByKind[Permissions.name(of: step.envelope.body!), default: 0] += 1
            switch step.expect {
            case .silent: break
            case .closeWith: closeExpected = true; if step.envelope.requestID != 0 { promised.append((n, step.envelope.requestID)) }
            default: if step.envelope.requestID != 0 { promised.append((n, step.envelope.requestID)) }
            }
        }

        // Every promised answer, then either the promised close or an answer to a probe:
        // a connection that gets neither within the timeout is a hang.
        let rids = promised.map(\.rid)
        if !abandoned { _ = await connection.wait(timeout) { connection.answeredCount(rids) == rids.count || (connection.isClosed && !closeExpected) } }
        if closeExpected {
            if !(await connection.wait(timeout) { connection.isClosed }) {
                stats.hangs += 1
                stats.problem("\(label): a refused Hello did not close the connection")
            }
        } else if !connection.isClosed && !abandoned {
            let probe: UInt64 = 0xF0F0_0000_0000_0000 | UInt64(index)
            let expect: Expectation = script.helloAccepted ? .reply("Ack") : .error(.invalidArgument)
            if (try? await connection.send(WireEnvelope(requestID: probe, .heartbeat(WireHeartbeat())))) != nil,
               await connection.wait(timeout, { connection.answer(probe) != nil || connection.isClosed }),
               let answer = connection.answer(probe) {
                if !matches(answer, expect) { stats.mismatches += 1; stats.problem("\(label): probe answered \(describe(answer)), expected \(expect)") }
            } else if !connection.isClosed {
                stats.hangs += 1
                stats.problem("\(label): the closing probe was not answered")
            }
        }
        if connection.isClosed && !closeExpected {
            stats.mismatches += 1
            stats.problem("\(label): closed by the coordinator without a refused Hello (last error: \(connection.lastError.map(describe) ?? "none"))")
        }

        // Check every promise in order.
        for (n, step) in script.steps.enumerated() where step.envelope.requestID != 0 && n < stats.messages {
            let rid = step.envelope.requestID
            let sent = Permissions.name(of: step.envelope.body!)
            let answer = connection.answer(rid)
            if step.expect == .silent {
                if let answer { stats.mismatches += 1; stats.problem("\(label): \(sent) #\(n) expects no answer, got \(describe(answer))") }
                continue
            }
            stats.promised += 1
            guard let answer else {
                // Even a connection closed after a refused Hello answers everything before
                // it: those answers are written, in order, before the close.
                stats.hangs += 1
                stats.problem("\(label): \(sent) #\(n) (request \(rid)) was never answered; expected \(step.expect)")
                continue
            }
            stats.answered += 1
            stats.answersByKind[Permissions.name(of: answer.body!), default: 0] += 1
            if case let .error(frame) = answer.body { stats.errorsByCode[frame.code.label, default: 0] += 1 }
            if case let .jobAccepted(accepted) = answer.body {
                stats.jobsAccepted += 1
                shared.add(job: accepted.jobID)
            }
            if step.expect.isClose && connection.isClosed { stats.closedAsPromised += 1 }
            if !matches(answer, step.expect) {
                stats.mismatches += 1
                stats.problem("\(label): \(sent) #\(n) answered \(describe(answer)), expected \(step.expect)")
            }
        }
        stats.tasksReceived = connection.leasedCount
        return stats
    }

    /// Puts the ids the coordinator chose where the script asked for them.
    static func resolve(_ envelope: inout WireEnvelope, connection: FuzzWireConnection, shared: Shared, rng: inout FuzzRandom, stats: inout Stats) {
        func job(_ id: inout String) {
            if id == acceptedJobMarker { id = shared.job(rng.next()) ?? "job-none-accepted-yet" }
        }
        switch envelope.body {
        case var .getJob(m)?: job(&m.jobID); envelope.body = .getJob(m)
        case var .cancelJob(m)?: job(&m.jobID); envelope.body = .cancelJob(m)
        case var .getTaskResults(m)?: job(&m.jobID); envelope.body = .getTaskResults(m)
        case var .tasks(m)?:
            for i in m.tasks.indices { job(&m.tasks[i].jobID) }
            envelope.body = .tasks(m)
        case var .results(m)?:
            for i in m.outcomes.indices where m.outcomes[i].taskID == leasedTaskMarker {
                guard let lease = connection.leased(rng.next()) else { continue }
                m.outcomes[i].taskID = lease.task
                m.outcomes[i].attempt = lease.attempt
                stats.resultsForLeasedTasks += 1
            }
            envelope.body = .results(m)
        case var .progress(m)?:
            for i in m.progress.indices where m.progress[i].taskID == leasedTaskMarker {
                guard let lease = connection.leased(rng.next()) else { continue }
                m.progress[i].taskID = lease.task
                m.progress[i].attempt = lease.attempt
            }
            envelope.body = .progress(m)
        case var .heartbeat(m)?:
            for i in m.runningTaskIds.indices where m.runningTaskIds[i] == leasedTaskMarker {
                m.runningTaskIds[i] = connection.leased(rng.next())?.task ?? leasedTaskMarker
            }
            envelope.body = .heartbeat(m)
        default: break
        }
    }

    static func matches(_ answer: WireEnvelope, _ expect: Expectation) -> Bool {
        switch expect {
        case .silent: return false
        case .answer: return true
        case let .reply(name): return Permissions.name(of: answer.body!) == name
        case let .error(code), let .closeWith(code):
            if case let .error(frame) = answer.body { return frame.code == code }
            return false
        }
    }

    static func describe(_ envelope: WireEnvelope) -> String {
        if case let .error(frame) = envelope.body { return "error \(frame.code.label): \(frame.message.prefix(200))" }
        return Permissions.name(of: envelope.body!)
    }
}

extension MessageFuzzer.Expectation {
    var isClose: Bool { if case .closeWith = self { return true } else { return false } }
}

/// One fuzzing connection: writes envelopes, keeps the first answer to each request id,
/// the tasks the coordinator leases to it, and whether the coordinator closed it.
final class FuzzWireConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private var channel: Channel!
    private let lock = NIOLock()
    private var answers: [UInt64: WireEnvelope] = [:]
    private var leases: [(task: UInt64, attempt: UInt32)] = []
    private var closed = false
    private(set) var lastErrorFrame: WireEnvelope?

    static func connect(host: String, port: Int, context: NIOSSLContext, group: EventLoopGroup) async throws -> FuzzWireConnection {
        let connection = FuzzWireConnection()
        connection.channel = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(BoundedFrameDecoder(maxFrameBytes: 1 << 27))
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            }
            .connect(host: host, port: port).get()
        return connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let envelope = try? WireEnvelope(frame: unwrapInboundIn(data)) else { return }
        lock.withLock {
            if case .error = envelope.body { lastErrorFrame = envelope }
            if case let .tasks(batch) = envelope.body {
                leases += batch.tasks.map { ($0.taskID, $0.attempt) }
            }
            if envelope.requestID != 0, answers[envelope.requestID] == nil {
                answers[envelope.requestID] = envelope
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        lock.withLock { closed = true }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    var isClosed: Bool { lock.withLock { closed } }
    var lastError: WireEnvelope? { lock.withLock { lastErrorFrame } }
    var leasedCount: Int { lock.withLock { leases.count } }
    func answer(_ rid: UInt64) -> WireEnvelope? { lock.withLock { answers[rid] } }
    func answeredCount(_ rids: [UInt64]) -> Int { lock.withLock { rids.filter { answers[$0] != nil }.count } }
    func leased(_ pick: UInt64) -> (task: UInt64, attempt: UInt32)? {
        lock.withLock { leases.isEmpty ? nil : leases[Int(pick % UInt64(leases.count))] }
    }

    func send(_ envelope: WireEnvelope) async throws {
        let payload = try envelope.framePayload()
        var buffer = channel.allocator.buffer(capacity: payload.readableBytes + 4)
        buffer.writeInteger(UInt32(payload.readableBytes))
        buffer.writeImmutableBuffer(payload)
        try await channel.writeAndFlush(buffer)
    }

    /// Polls `condition` until it holds or `timeout` passed; whether it held.
    func wait(_ timeout: Duration, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    func close() { channel.close(promise: nil) }
}
