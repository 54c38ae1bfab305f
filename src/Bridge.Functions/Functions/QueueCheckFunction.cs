using Bridge.CloudTasks;
using Bridge.Core.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;

namespace Bridge.Functions.Functions;

/// <summary>
/// <c>GET /api/checks/queues</c> (host master key only): a GetQueue on every route's queue through the app's own
/// Cloud Tasks client and credential. The deployment's smoke test calls it, so a broken federation (token audience,
/// issuer, provider condition, impersonation) or a missing grant or queue fails the deployment, not the first event.
/// 200 when every queue answers; 503 naming each route that did not, with the reason (never a token).
/// </summary>
public sealed class QueueCheckFunction(RouteTable routes, CloudTasksClient client)
{
    [Function("CheckQueues")]
    public async Task<IActionResult> RunAsync(
        [HttpTrigger(AuthorizationLevel.Admin, "get", Route = "checks/queues")] HttpRequest request,
        CancellationToken cancellationToken)
    {
        var results = new List<QueueCheckResult>();
        foreach (var route in routes.All.OrderBy(r => r.Name, StringComparer.Ordinal))
        {
            try
            {
                var queue = await client.GetQueueAsync(route.Queue, cancellationToken);
                results.Add(new QueueCheckResult(route.Name, route.Queue.ToString(), queue.State.ToString(), Error: null));
            }
            catch (CloudTasksException ex)
            {
                results.Add(new QueueCheckResult(route.Name, route.Queue.ToString(), State: null, $"{ex.Reason}: {ex.Message}"));
            }
        }

        var ok = results.TrueForAll(r => r.Error is null);
        var body = new { ok, queues = results };
        return ok ? new OkObjectResult(body) : new ObjectResult(body) { StatusCode = StatusCodes.Status503ServiceUnavailable };
    }
}

/// <summary>One route's queue as the app's own credential sees it.</summary>
public sealed record QueueCheckResult(string Route, string Queue, string? State, string? Error);
