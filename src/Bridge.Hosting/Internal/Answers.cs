using System.Globalization;
using System.Text.Json;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Core.Routing;
using Microsoft.AspNetCore.Http;

namespace Bridge.Hosting.Internal;

/// <summary>Every answer Bridge's HTTP surface gives, written once: bodies, problem details, Retry-After, challenges.</summary>
internal static class Answers
{
    // Fixed, so the body doesn't depend on how a host configured its JSON options.
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static IResult Accepted(ForwardResult result) => Results.Json(
        new ForwardAccepted(result.TaskName, result.Route, result.ScheduleTime, result.Outcome == ForwardOutcome.Deduplicated),
        Json,
        statusCode: StatusCodes.Status202Accepted);

    /// <summary>RFC 9457 problem details with the machine-readable reason; no secrets, no tokens.</summary>
    public static IResult Problem(ForwardingException error, int? retryAfterSeconds = null)
    {
        var problem = Results.Problem(
            error.Message,
            statusCode: ForwardingProblems.StatusFor(error.Reason),
            title: error.ReasonCode,
            type: ForwardingProblems.TypeFor(error.Reason),
            extensions: new Dictionary<string, object?> { ["reason"] = error.ReasonCode, ["transient"] = error.IsTransient });
        return (retryAfterSeconds ?? ForwardingProblems.RetryAfterSeconds(error)) is { } seconds ? new WithHeader(problem, "Retry-After", seconds.ToString(CultureInfo.InvariantCulture)) : problem;
    }

    /// <summary>The status with a small JSON body: the outcome id, or the reason (never a token or a secret).</summary>
    public static IResult Callback(CallbackResponse response)
    {
        IResult answer = response.Reason is null
            ? Results.Json(new CallbackAccepted(response.OutcomeId), Json, statusCode: response.Status)
            : Results.Problem(
                response.Detail,
                statusCode: response.Status,
                title: response.Reason,
                type: "urn:bridge:callback:" + response.Reason,
                extensions: new Dictionary<string, object?> { ["reason"] = response.Reason });
        if (response.Status == StatusCodes.Status401Unauthorized)
        {
            answer = new WithHeader(answer, "WWW-Authenticate", "Bearer");
        }

        if (response.RetryAfter is { } delay)
        {
            answer = new WithHeader(answer, "Retry-After", ((int)Math.Ceiling(delay.TotalSeconds)).ToString(CultureInfo.InvariantCulture));
        }

        return answer;
    }

    /// <summary>Healthy or not, nothing more: anonymous callers learn no route names.</summary>
    public static IResult Health() => Results.Json(new HealthStatus("ok"), Json);

    /// <summary>The status with the route names, for authenticated callers.</summary>
    public static IResult HealthDetails(RouteTable routes) =>
        Results.Json(new HealthReport("ok", routes.All.Select(r => r.Name).Order(StringComparer.Ordinal).ToArray()), Json);

    private sealed record ForwardAccepted(string TaskName, string Route, DateTimeOffset? ScheduleTime, bool Deduplicated);

    private sealed record CallbackAccepted(string? OutcomeId);

    private sealed record HealthStatus(string Status);

    private sealed record HealthReport(string Status, string[] Routes);

    /// <summary>A result with one response header added before it writes.</summary>
    private sealed class WithHeader(IResult inner, string name, string value) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers[name] = value;
            return inner.ExecuteAsync(httpContext);
        }
    }
}
