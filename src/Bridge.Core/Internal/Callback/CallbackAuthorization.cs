using Bridge.CloudTasks;
using Bridge.Core.Callback;
using Bridge.Core.Routing;

namespace Bridge.Core.Internal;

/// <summary>Why a verified caller may not make the call it made; the name is the answer's reason and the metric's tag.</summary>
internal enum CallbackRefusal
{
    /// <summary>A dispatch for a queue that no route targeting this callback uses.</summary>
    QueueNotRoutedHere,

    /// <summary>A dispatch signed by another account than the one the route's tasks are signed as.</summary>
    NotTheRouteServiceAccount,

    /// <summary>A dispatch whose token was minted for another audience than its route's (another route's, for instance).</summary>
    NotTheRouteAudience,

    /// <summary>A report for a task in a queue of no route.</summary>
    TaskOfNoRoute,

    /// <summary>A report from an account the route does not allow to report.</summary>
    NotAllowedToReport,
}

/// <summary>
/// Who may make which call, from the routes. A dispatch-style call (X-CloudTasks-* headers) is accepted only for the
/// queue of a route whose tasks target this callback, and only from the account those tasks are signed as; a report
/// only for a task in a route's queue, and only from an account that route lists in
/// <see cref="RouteOptions.ReportingServiceAccounts"/>. The token proved who the caller is; this decides what that
/// caller may do, so task, queue and route named by the caller can't widen it.
/// </summary>
internal sealed class CallbackAuthorization
{
    private readonly Route[] _routes;
    private readonly HashSet<string> _callbackAudiences;

    public CallbackAuthorization(RouteTable routes, CallbackOptions options)
    {
        _routes = routes.All.ToArray();
        _callbackAudiences = new HashSet<string>(options.EffectiveAudiences, StringComparer.Ordinal);
    }

    /// <summary>Whether the route's tasks call this callback: their token's audience is one the callback accepts.</summary>
    public bool TargetsCallback(Route route) =>
        !string.IsNullOrEmpty(route.Options.ServiceAccountEmail) && _callbackAudiences.Contains(AudienceOf(route));

    /// <summary>The audience the route's task tokens are minted for.</summary>
    private static string AudienceOf(Route route) => string.IsNullOrEmpty(route.Options.Audience) ? route.Options.TargetUrl : route.Options.Audience;

    /// <summary>
    /// The route of a dispatch of a task in queue <paramref name="queueId"/>, if <paramref name="caller"/> may make it
    /// with a token for <paramref name="audiences"/>: the route's own audience, not only one the callback accepts.
    /// </summary>
    public CallbackRefusal? AuthorizeDispatch(string caller, IReadOnlyList<string> audiences, string queueId, string? routeName, out Route? route)
    {
        route = null;
        var candidates = _routes.Where(r => string.Equals(r.Queue.QueueId, queueId, StringComparison.Ordinal) && TargetsCallback(r)).ToList();
        if (!string.IsNullOrEmpty(routeName) && candidates.Find(r => string.Equals(r.Name, routeName, StringComparison.OrdinalIgnoreCase)) is { } named)
        {
            candidates = [named]; // the route the bridge stamped on the task, when it is one of them
        }

        if (candidates.Count == 0)
        {
            return CallbackRefusal.QueueNotRoutedHere;
        }

        var signedAsCaller = candidates.FindAll(r => string.Equals(r.Options.ServiceAccountEmail, caller, StringComparison.OrdinalIgnoreCase));
        if (signedAsCaller.Count == 0)
        {
            signedAsCaller = candidates.FindAll(r => r.Options.PreviousServiceAccounts.Contains(caller, StringComparer.OrdinalIgnoreCase)); // tasks queued before a rotation
        }

        if (signedAsCaller.Count == 0)
        {
            return CallbackRefusal.NotTheRouteServiceAccount;
        }

        route = signedAsCaller.Find(r => audiences.Contains(AudienceOf(r), StringComparer.Ordinal));
        return route is null ? CallbackRefusal.NotTheRouteAudience : null;
    }

    /// <summary>The route of a report on <paramref name="task"/>, if <paramref name="caller"/> may make it.</summary>
    public CallbackRefusal? AuthorizeReport(string caller, TaskName task, out Route? route)
    {
        route = null;
        var queue = task.Queue;
        var candidates = _routes.Where(r => r.Queue == queue).ToList();
        if (candidates.Count == 0)
        {
            return CallbackRefusal.TaskOfNoRoute;
        }

        route = candidates.Find(r => r.Options.ReportingServiceAccounts.Contains(caller, StringComparer.OrdinalIgnoreCase));
        return route is null ? CallbackRefusal.NotAllowedToReport : null;
    }
}
