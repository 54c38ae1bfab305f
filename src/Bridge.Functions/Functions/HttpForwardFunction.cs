using Bridge.Core.Forwarding;
using Bridge.Core.Intake;
using Bridge.Core.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Options;

namespace Bridge.Functions.Functions;

/// <summary>
/// HTTP → Cloud Tasks: <c>POST /api/events/{route}</c> with a raw body, JSON, or a CloudEvent (structured or
/// binary). 202 with the task; 4xx problem details for bad events; 503 with Retry-After when Cloud Tasks is down.
/// </summary>
public sealed class HttpForwardFunction(HttpIntake intake, IEventForwarder forwarder, IOptions<BridgeOptions> options)
{
    private readonly int _maxBodyBytes = options.Value.MaxBodyBytes;

    [Function("ForwardHttpEvent")]
    public async Task<IActionResult> RunAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "events/{route}")] HttpRequest request,
        string route)
    {
        ArgumentNullException.ThrowIfNull(request);
        var body = await HttpEventReader.ReadBodyAsync(request, _maxBodyBytes);
        if (body is null)
        {
            return HttpEventReader.Problem(new ForwardingException(ForwardingFailureReason.PayloadTooLarge, $"The body is larger than the limit of {_maxBodyBytes} bytes."));
        }

        try
        {
            var inbound = intake.Map(route, HttpEventReader.Headers(request), body, request.ContentType);
            var result = await forwarder.ForwardAsync(inbound, request.HttpContext.RequestAborted);
            return new ObjectResult(new
            {
                taskName = result.TaskName,
                route = result.Route,
                scheduleTime = result.ScheduleTime,
                deduplicated = result.Outcome == ForwardOutcome.Deduplicated,
            })
            { StatusCode = StatusCodes.Status202Accepted };
        }
        catch (ForwardingException ex)
        {
            return HttpEventReader.Problem(ex);
        }
    }
}
