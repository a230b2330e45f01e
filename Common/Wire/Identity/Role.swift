/// The roles a Tower certificate can carry. The role is written into the certificate's
/// subject as its organizational unit, so it is signed by the cluster CA and cannot be
/// claimed by a peer; the coordinator checks it for every message (see ``Permissions``).
public enum ClusterRole: String, CaseIterable, Sendable, Codable {
    case coordinator
    case worker
    case `operator`
    case gateway

    public init?(wire: WireRole) {
        switch wire {
        case .coordinator: self = .coordinator
        case .worker: self = .worker
        case .operator: self = .operator
        case .gateway: self = .gateway
        case .unspecified, .UNRECOGNIZED: return nil
        }
    }

    public var wire: WireRole {
        switch self {
        case .coordinator: return .coordinator
        case .worker: return .worker
        case .operator: return .operator
        case .gateway: return .gateway
        }
    }
}

/// Which role may send which message to the coordinator. One table, consulted for every
/// inbound frame, so that a worker certificate cannot submit jobs and an operator cannot
/// lease tasks whatever the code path.
public enum Permissions {
    public static func allowed(_ body: WireEnvelope.OneOf_Body, for role: ClusterRole) -> Bool {
        switch body {
        case .hello, .heartbeat, .error, .ack, .blobRequest:
            return true
        case .results, .drain, .progress:
            return role == .worker
        case .blobChunk:
            // Workers return outputs, operators upload files to ingest.
            return role == .worker || role == .operator
        case .ingest, .buildTrainingSet, .listPipelines, .listPipelineRuns, .triggerPipeline, .getDriftReport,
             .listShorts, .getShort, .approveShort:
            return role == .operator
        case .events, .getRecommendations, .getServingSnapshot:
            // The gateway feeds events back and serves stored recommendations.
            return role == .operator || role == .gateway
        case .submitJob, .cancelJob, .promote, .rollback, .rerunRun,
             .listJobs, .getJob, .listWorkers, .getTaskResults, .listRuns, .listExperiments:
            return role == .operator
        case .listModels, .getModel, .subscribe:
            // The gateway reads models to serve the champion.
            return role == .operator || role == .gateway
        case .welcome, .tasks, .cancelTasks, .jobAccepted, .jobList, .job, .workerList, .taskResults,
             .runList, .experimentList, .modelList, .modelDetail, .promotionResult, .promotionEvent,
             .ingestResult, .recommendationList, .trainingSet, .eventsAccepted, .pipelineList, .pipelineRunList,
             .pipelineRun, .driftReport, .servingSnapshot, .shortList, .short:
            // Only the coordinator sends these.
            return false
        }
    }

    /// A short name of the message for errors and logs.
    public static func name(of body: WireEnvelope.OneOf_Body) -> String {
        switch body {
        case .hello: return "Hello"
        case .welcome: return "Welcome"
        case .error: return "Error"
        case .heartbeat: return "Heartbeat"
        case .ack: return "Ack"
        case .tasks: return "TaskBatch"
        case .results: return "ResultBatch"
        case .cancelTasks: return "CancelTasks"
        case .drain: return "Drain"
        case .blobRequest: return "BlobRequest"
        case .blobChunk: return "BlobChunk"
        case .submitJob: return "SubmitJob"
        case .jobAccepted: return "JobAccepted"
        case .listJobs: return "ListJobs"
        case .jobList: return "JobList"
        case .getJob: return "GetJob"
        case .job: return "JobSummary"
        case .listWorkers: return "ListWorkers"
        case .workerList: return "WorkerList"
        case .cancelJob: return "CancelJob"
        case .getTaskResults: return "GetTaskResults"
        case .taskResults: return "TaskResultList"
        case .progress: return "ProgressBatch"
        case .listRuns: return "ListRuns"
        case .runList: return "RunList"
        case .listExperiments: return "ListExperiments"
        case .experimentList: return "ExperimentList"
        case .listModels: return "ListModels"
        case .modelList: return "ModelList"
        case .getModel: return "GetModel"
        case .modelDetail: return "ModelDetail"
        case .promote: return "Promote"
        case .rollback: return "Rollback"
        case .promotionResult: return "PromotionResult"
        case .subscribe: return "Subscribe"
        case .rerunRun: return "RerunRun"
        case .promotionEvent: return "PromotionEvent"
        case .ingest: return "Ingest"
        case .ingestResult: return "IngestResult"
        case .getRecommendations: return "GetRecommendations"
        case .recommendationList: return "RecommendationList"
        case .buildTrainingSet: return "BuildTrainingSet"
        case .trainingSet: return "TrainingSetInfo"
        case .events: return "EventBatch"
        case .eventsAccepted: return "EventsAccepted"
        case .listPipelines: return "ListPipelines"
        case .pipelineList: return "PipelineList"
        case .listPipelineRuns: return "ListPipelineRuns"
        case .pipelineRunList: return "PipelineRunList"
        case .triggerPipeline: return "TriggerPipeline"
        case .pipelineRun: return "PipelineRunInfo"
        case .getDriftReport: return "GetDriftReport"
        case .driftReport: return "DriftReportInfo"
        case .getServingSnapshot: return "GetServingSnapshot"
        case .servingSnapshot: return "ServingSnapshot"
        case .listShorts: return "ListShorts"
        case .shortList: return "ShortList"
        case .getShort: return "GetShort"
        case .approveShort: return "ApproveShort"
        case .short: return "ShortInfo"
        }
    }
}
