using Bridge.Core.Callback;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Options;

namespace Bridge.Functions.Functions;

/// <summary>
/// <c>POST /api/tasks/callback</c>: Cloud Tasks dispatches and outcome reports. Anonymous at the function level:
/// the caller's Google-signed OIDC token is verified by the receiver before anything else.
/// </summary>
public sealed class CallbackFunction(CallbackReceiver receiver, IOptions<CallbackOptions> options)
{
    private readonly int _maxBodyBytes = options.Value.MaxBodyBytes;

    [Function("TaskCallback")]
    public async Task<IActionResult> RunAsync([HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "tasks/callback")] HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var body = await HttpEventReader.ReadBodyAsync(request, _maxBodyBytes);
        if (body is null)
        {
            return Answer(new CallbackResponse(413, "PayloadTooLarge", null));
        }

        var response = await receiver.HandleAsync(new CallbackRequest(HttpEventReader.Headers(request), body, request.ContentType), request.HttpContext.RequestAborted);
        return Answer(response);
    }

    /// <summary>The status with a small JSON body: the outcome id, or the reason (never a token or a secret).</summary>
    internal static IActionResult Answer(CallbackResponse response)
    {
        object body = response.Reason is null
            ? new { outcomeId = response.OutcomeId }
            : new ProblemDetails { Type = "urn:bridge:callback:" + response.Reason, Title = response.Reason, Status = response.Status, Extensions = { ["reason"] = response.Reason } };
        return new CallbackResult(body, response.Status, response.RetryAfter);
    }

    private sealed class CallbackResult(object body, int status, TimeSpan? retryAfter) : ObjectResult(body)
    {
        public override Task ExecuteResultAsync(ActionContext context)
        {
            StatusCode = status;
            if (status == StatusCodes.Status401Unauthorized)
            {
                context.HttpContext.Response.Headers.WWWAuthenticate = "Bearer";
            }

            if (retryAfter is { } delay)
            {
                context.HttpContext.Response.Headers.RetryAfter = ((int)Math.Ceiling(delay.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            return base.ExecuteResultAsync(context);
        }
    }
}
