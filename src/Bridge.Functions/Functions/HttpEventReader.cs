using Bridge.Core.Forwarding;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace Bridge.Functions.Functions;

/// <summary>HTTP plumbing for intake: bounded body reading, header flattening, problem details for failures.</summary>
internal static class HttpEventReader
{
    /// <summary>The body, or null when it exceeds <paramref name="limit"/> (read no further than that).</summary>
    public static async Task<byte[]?> ReadBodyAsync(HttpRequest request, int limit)
    {
        if (request.ContentLength > limit)
        {
            return null;
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, request.HttpContext.RequestAborted)) > 0)
        {
            if (buffer.Length + read > limit)
            {
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

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
