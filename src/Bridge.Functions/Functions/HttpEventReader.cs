using Bridge.Core.Forwarding;
using Bridge.Core.Intake;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace Bridge.Functions.Functions;

/// <summary>HTTP plumbing for intake: bounded body reading, header flattening, problem details for failures.</summary>
internal static class HttpEventReader
{
    /// <summary>The body, or null when it exceeds <paramref name="limit"/> (read no further than that).</summary>
    public static Task<byte[]?> ReadBodyAsync(HttpRequest request, int limit) =>
        BoundedBody.ReadAsync(request.Body, request.ContentLength, limit, request.HttpContext.RequestAborted);

    public static Dictionary<string, string> Headers(HttpRequest request) =>
        request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);

    /// <summary>RFC 9457 problem details with the machine-readable reason; no secrets, no tokens.</summary>
    public static IActionResult Problem(ForwardingException ex)
    {
        var status = ForwardingProblems.StatusFor(ex.Reason);
        var problem = new ProblemDetails
        {
            Type = ForwardingProblems.TypeFor(ex.Reason),
            Title = ex.ReasonCode,
            Status = status,
            Detail = ex.Message,
            Extensions = { ["reason"] = ex.ReasonCode, ["transient"] = ex.IsTransient },
        };
        return new ProblemResult(problem, ForwardingProblems.RetryAfterSeconds(ex) is { } seconds ? TimeSpan.FromSeconds(seconds) : null);
    }

    private sealed class ProblemResult(ProblemDetails problem, TimeSpan? retryAfter) : ObjectResult(problem)
    {
        public override Task ExecuteResultAsync(ActionContext context)
        {
            StatusCode = problem.Status;
            ContentTypes.Add("application/problem+json");
            if (retryAfter is { } delay)
            {
                context.HttpContext.Response.Headers.RetryAfter = ((int)Math.Ceiling(delay.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            return base.ExecuteResultAsync(context);
        }
    }
}
