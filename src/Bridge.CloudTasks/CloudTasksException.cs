using Google.Rpc;
using Grpc.Core;

namespace Bridge.CloudTasks;

/// <summary>Why a Cloud Tasks call failed; one value per gRPC status the service answers.</summary>
public enum CloudTasksFailureReason
{
    Unknown,
    Cancelled,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

/// <summary>
/// The one error type of the client. <see cref="IsTransient"/> tells a caller whether trying again later can help
/// (retry, abandon, 503) or not (dead-letter, 4xx), with no string matching.
/// </summary>
public sealed class CloudTasksException : Exception
{
    public CloudTasksException(CloudTasksFailureReason reason, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Reason = reason;
        StatusCode = ToStatusCode(reason);
        FieldViolations = [];
    }

    private CloudTasksException(StatusCode code, string detail, Google.Rpc.Status? status, string method, string messagePrefix, Exception? innerException)
        : base($"{messagePrefix}: {code}: {detail}", innerException)
    {
        StatusCode = code;
        Reason = ToReason(code);
        Method = method;
        FieldViolations = status?.GetDetail<BadRequest>()?.FieldViolations
            .Select(v => new CloudTasksFieldViolation(v.Field, v.Description))
            .ToArray() ?? [];
        var retryInfo = status?.GetDetail<RetryInfo>();
        RetryDelay = retryInfo?.RetryDelay?.ToTimeSpan();
    }

    public CloudTasksFailureReason Reason { get; }

    public StatusCode StatusCode { get; }

    /// <summary>The RPC that failed, e.g. <c>CreateTask</c>.</summary>
    public string? Method { get; }

    /// <summary>Field violations the server sent in a <c>google.rpc.BadRequest</c> detail.</summary>
    public IReadOnlyList<CloudTasksFieldViolation> FieldViolations { get; }

    /// <summary>The delay the server asked for in a <c>google.rpc.RetryInfo</c> detail, if any.</summary>
    public TimeSpan? RetryDelay { get; }

    /// <summary>True when the same call may succeed later: overload, outage, timeout, contention.</summary>
    public bool IsTransient => IsTransientReason(Reason);

    public static bool IsTransientReason(CloudTasksFailureReason reason) => reason is
        CloudTasksFailureReason.Unavailable or
        CloudTasksFailureReason.DeadlineExceeded or
        CloudTasksFailureReason.ResourceExhausted or
        CloudTasksFailureReason.Aborted or
        CloudTasksFailureReason.Internal or
        CloudTasksFailureReason.Unknown;

    internal static CloudTasksException FromRpc(RpcException rpc, string method) =>
        new(rpc.StatusCode, rpc.Status.Detail, rpc.GetRpcStatus(), method, $"{method} failed", rpc);

    /// <summary>
    /// A <c>google.rpc.Status</c> carried inside a response rather than as the call's status: an operation's error,
    /// or one request's failure in a batch's metadata (<paramref name="requestIndex"/>).
    /// </summary>
    public static CloudTasksException FromRpcStatus(Google.Rpc.Status status, string method, int? requestIndex = null)
    {
        ArgumentNullException.ThrowIfNull(status);
        var code = System.Enum.IsDefined((StatusCode)status.Code) ? (StatusCode)status.Code : Grpc.Core.StatusCode.Unknown;
        var prefix = requestIndex is { } index ? $"{method} request {index} failed" : $"{method} failed";
        return new(code, status.Message, status, method, prefix, null);
    }

    public static CloudTasksFailureReason ToReason(StatusCode code) => code switch
    {
        Grpc.Core.StatusCode.Cancelled => CloudTasksFailureReason.Cancelled,
        Grpc.Core.StatusCode.InvalidArgument => CloudTasksFailureReason.InvalidArgument,
        Grpc.Core.StatusCode.DeadlineExceeded => CloudTasksFailureReason.DeadlineExceeded,
        Grpc.Core.StatusCode.NotFound => CloudTasksFailureReason.NotFound,
        Grpc.Core.StatusCode.AlreadyExists => CloudTasksFailureReason.AlreadyExists,
        Grpc.Core.StatusCode.PermissionDenied => CloudTasksFailureReason.PermissionDenied,
        Grpc.Core.StatusCode.ResourceExhausted => CloudTasksFailureReason.ResourceExhausted,
        Grpc.Core.StatusCode.FailedPrecondition => CloudTasksFailureReason.FailedPrecondition,
        Grpc.Core.StatusCode.Aborted => CloudTasksFailureReason.Aborted,
        Grpc.Core.StatusCode.OutOfRange => CloudTasksFailureReason.OutOfRange,
        Grpc.Core.StatusCode.Unimplemented => CloudTasksFailureReason.Unimplemented,
        Grpc.Core.StatusCode.Internal => CloudTasksFailureReason.Internal,
        Grpc.Core.StatusCode.Unavailable => CloudTasksFailureReason.Unavailable,
        Grpc.Core.StatusCode.DataLoss => CloudTasksFailureReason.DataLoss,
        Grpc.Core.StatusCode.Unauthenticated => CloudTasksFailureReason.Unauthenticated,
        _ => CloudTasksFailureReason.Unknown,
    };

    private static StatusCode ToStatusCode(CloudTasksFailureReason reason) => reason switch
    {
        CloudTasksFailureReason.Cancelled => Grpc.Core.StatusCode.Cancelled,
        CloudTasksFailureReason.InvalidArgument => Grpc.Core.StatusCode.InvalidArgument,
        CloudTasksFailureReason.DeadlineExceeded => Grpc.Core.StatusCode.DeadlineExceeded,
        CloudTasksFailureReason.NotFound => Grpc.Core.StatusCode.NotFound,
        CloudTasksFailureReason.AlreadyExists => Grpc.Core.StatusCode.AlreadyExists,
        CloudTasksFailureReason.PermissionDenied => Grpc.Core.StatusCode.PermissionDenied,
        CloudTasksFailureReason.ResourceExhausted => Grpc.Core.StatusCode.ResourceExhausted,
        CloudTasksFailureReason.FailedPrecondition => Grpc.Core.StatusCode.FailedPrecondition,
        CloudTasksFailureReason.Aborted => Grpc.Core.StatusCode.Aborted,
        CloudTasksFailureReason.OutOfRange => Grpc.Core.StatusCode.OutOfRange,
        CloudTasksFailureReason.Unimplemented => Grpc.Core.StatusCode.Unimplemented,
        CloudTasksFailureReason.Internal => Grpc.Core.StatusCode.Internal,
        CloudTasksFailureReason.Unavailable => Grpc.Core.StatusCode.Unavailable,
        CloudTasksFailureReason.DataLoss => Grpc.Core.StatusCode.DataLoss,
        CloudTasksFailureReason.Unauthenticated => Grpc.Core.StatusCode.Unauthenticated,
        _ => Grpc.Core.StatusCode.Unknown,
    };
}

/// <summary>One field the server rejected, and why.</summary>
public sealed record CloudTasksFieldViolation(string Field, string Description);
