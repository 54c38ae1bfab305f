using Bridge.Core.Callback;
using Bridge.Core.Forwarding;
using Bridge.Core.Intake;
using Bridge.Core.Routing;
using Bridge.Hosting.Internal;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Bridge.Hosting;

/// <summary>
/// Bridge's HTTP surface, once for both hosts: the runner maps these handlers with minimal APIs, the function app's
/// functions call them and return their <see cref="IResult"/>. Paths are relative to the <c>api/</c> prefix.
/// </summary>
public static class BridgeEndpoints
{
    public const string RoutePrefix = "api";

    /// <summary><c>POST api/events/{route}</c>: HTTP and CloudEvents intake.</summary>
    public const string EventsRoute = "events/{route}";

    /// <summary><c>POST api/tasks/callback</c>: Cloud Tasks dispatches and outcome reports.</summary>
    public const string CallbackRoute = "tasks/callback";

    /// <summary><c>GET api/health</c>.</summary>
    public const string HealthRoute = "health";

    /// <summary>
    /// Maps the request to an event and forwards it: 202 with the task; problem details with the reason for bad
    /// events; 503 with Retry-After when Cloud Tasks is unavailable.
    /// </summary>
    public static async Task<IResult> ForwardEventAsync(HttpRequest request, string route, HttpIntake intake, IEventForwarder forwarder, IOptions<BridgeOptions> options)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(intake);
        ArgumentNullException.ThrowIfNull(forwarder);
        ArgumentNullException.ThrowIfNull(options);
        var limit = options.Value.MaxBodyBytes;
        try
        {
            var body = await HttpRequests.ReadBodyAsync(request, limit).ConfigureAwait(false)
                ?? throw ForwardingProblems.BodyTooLarge(limit);
            var result = await forwarder.ForwardAsync(intake.Map(route, HttpRequests.Headers(request), body, request.ContentType), request.HttpContext.RequestAborted).ConfigureAwait(false);
            return Answers.Accepted(result);
        }
        catch (ForwardingException ex)
        {
            return Answers.Problem(ex);
        }
    }

    /// <summary>Verifies and settles a callback: 200 with the outcome id, or the refusal's status and reason.</summary>
    public static async Task<IResult> ReceiveCallbackAsync(HttpRequest request, CallbackReceiver receiver, IOptions<CallbackOptions> options)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(receiver);
        ArgumentNullException.ThrowIfNull(options);
        var body = await HttpRequests.ReadBodyAsync(request, options.Value.MaxBodyBytes).ConfigureAwait(false);
        var response = body is null
            ? new CallbackResponse(StatusCodes.Status413PayloadTooLarge, "PayloadTooLarge", null)
            : await receiver.HandleAsync(new CallbackRequest(HttpRequests.Headers(request), body, request.ContentType), request.HttpContext.RequestAborted).ConfigureAwait(false);
        return Answers.Callback(response);
    }

    /// <summary>The app is up and its configuration validated (it would not have started otherwise).</summary>
    public static IResult Health(RouteTable routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        return Answers.Health(routes);
    }
}
