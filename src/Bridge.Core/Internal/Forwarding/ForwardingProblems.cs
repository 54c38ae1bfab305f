using Bridge.Core.Forwarding;

namespace Bridge.Core.Internal;

/// <summary>How HTTP intake answers a failure, in both hosts: status, problem type, Retry-After.</summary>
internal static class ForwardingProblems
{
    public static int StatusFor(ForwardingFailureReason reason) => reason switch
    {
        ForwardingFailureReason.UnknownRoute => 404,
        ForwardingFailureReason.PayloadTooLarge => 413,
        ForwardingFailureReason.InvalidEvent or ForwardingFailureReason.InvalidSchedule => 400,
        ForwardingFailureReason.RejectedByCloudTasks => 422,
        ForwardingFailureReason.QueueNotFound => 502,
        _ => 503,
    };

    /// <summary>The refusal of a body over the limit, before any call: the same text in both hosts.</summary>
    public static ForwardingException BodyTooLarge(int limit) =>
        new(ForwardingFailureReason.PayloadTooLarge, $"The body is larger than the limit of {limit} bytes.");

    public static string TypeFor(ForwardingFailureReason reason) => "urn:bridge:forwarding:" + reason;

    /// <summary>Seconds to wait before retrying a transient failure; null for permanent ones.</summary>
    public static int? RetryAfterSeconds(ForwardingException error) =>
        error.IsTransient ? (int)Math.Ceiling((error.RetryAfter ?? TimeSpan.FromSeconds(5)).TotalSeconds) : null;
}
