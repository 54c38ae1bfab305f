using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Beta = Bridge.CloudTasks.V2Beta3;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// Maps google.cloud.tasks.v2 messages to the engine's v2beta3 ones and back. Messages whose field numbers agree
/// (targets, rate limits, retry config, attempts, most requests) go through a serialize/parse round trip; Queue and
/// Task, whose numbers differ, are mapped field by field; the queue's http_target has v2beta3's numbers and goes through
/// the round trip too. Fields v2 lacks (type, ttls, stats, pull_message) are dropped on the way out; v2 requests
/// cannot carry them.
/// </summary>
internal static class V2Mapping
{
    /// <summary>Top-level Queue fields UpdateQueue may change through v2.</summary>
    private static readonly string[] UpdatableFields = ["app_engine_routing_override", "http_target", "rate_limits", "retry_config", "stackdriver_logging_config"];

    public static T Convert<T>(IMessage? source, MessageParser<T> parser)
        where T : class, IMessage<T> => source is null ? null! : parser.ParseFrom(source.ToByteString());

    public static Beta.Queue ToBeta(V2.Queue? queue)
    {
        if (queue is null)
        {
            return null!;
        }

        var beta = new Beta.Queue
        {
            Name = queue.Name,
            RateLimits = Convert(queue.RateLimits, Beta.RateLimits.Parser),
            RetryConfig = Convert(queue.RetryConfig, Beta.RetryConfig.Parser),
            State = (Beta.Queue.Types.State)(int)queue.State,
            PurgeTime = queue.PurgeTime,
            StackdriverLoggingConfig = Convert(queue.StackdriverLoggingConfig, Beta.StackdriverLoggingConfig.Parser),
            HttpTarget = Convert(queue.HttpTarget, Beta.HttpTarget.Parser),
        };
        if (queue.AppEngineRoutingOverride is { } routing)
        {
            beta.AppEngineHttpQueue = new Beta.AppEngineHttpQueue { AppEngineRoutingOverride = Convert(routing, Beta.AppEngineRouting.Parser) };
        }

        return beta;
    }

    public static V2.Queue FromBeta(Beta.Queue queue) => new()
    {
        Name = queue.Name,
        AppEngineRoutingOverride = Convert(queue.AppEngineHttpQueue?.AppEngineRoutingOverride, V2.AppEngineRouting.Parser),
        RateLimits = Convert(queue.RateLimits, V2.RateLimits.Parser),
        RetryConfig = Convert(queue.RetryConfig, V2.RetryConfig.Parser),
        State = (V2.Queue.Types.State)(int)queue.State,
        PurgeTime = queue.PurgeTime,
        StackdriverLoggingConfig = Convert(queue.StackdriverLoggingConfig, V2.StackdriverLoggingConfig.Parser),
        HttpTarget = Convert(queue.HttpTarget, V2.HttpTarget.Parser),
    };

    public static Beta.Task ToBeta(V2.Task? task)
    {
        if (task is null)
        {
            return null!;
        }

        var beta = new Beta.Task
        {
            Name = task.Name,
            ScheduleTime = task.ScheduleTime,
            CreateTime = task.CreateTime,
            DispatchDeadline = task.DispatchDeadline,
            DispatchCount = task.DispatchCount,
            ResponseCount = task.ResponseCount,
            FirstAttempt = Convert(task.FirstAttempt, Beta.Attempt.Parser),
            LastAttempt = Convert(task.LastAttempt, Beta.Attempt.Parser),
            View = (Beta.Task.Types.View)(int)task.View,
        };
        switch (task.MessageTypeCase)
        {
            case V2.Task.MessageTypeOneofCase.HttpRequest:
                beta.HttpRequest = Convert(task.HttpRequest, Beta.HttpRequest.Parser);
                break;
            case V2.Task.MessageTypeOneofCase.AppEngineHttpRequest:
                beta.AppEngineHttpRequest = Convert(task.AppEngineHttpRequest, Beta.AppEngineHttpRequest.Parser);
                break;
        }

        return beta;
    }

    public static V2.Task FromBeta(Beta.Task task)
    {
        var v2 = new V2.Task
        {
            Name = task.Name,
            ScheduleTime = task.ScheduleTime,
            CreateTime = task.CreateTime,
            DispatchDeadline = task.DispatchDeadline,
            DispatchCount = task.DispatchCount,
            ResponseCount = task.ResponseCount,
            FirstAttempt = Convert(task.FirstAttempt, V2.Attempt.Parser),
            LastAttempt = Convert(task.LastAttempt, V2.Attempt.Parser),
            View = (V2.Task.Types.View)(int)task.View,
        };
        switch (task.PayloadTypeCase)
        {
            case Beta.Task.PayloadTypeOneofCase.HttpRequest:
                v2.HttpRequest = Convert(task.HttpRequest, V2.HttpRequest.Parser);
                break;
            case Beta.Task.PayloadTypeOneofCase.AppEngineHttpRequest:
                v2.AppEngineHttpRequest = Convert(task.AppEngineHttpRequest, V2.AppEngineHttpRequest.Parser);
                break;
        }

        return v2;
    }

    /// <summary>
    /// A v2 UpdateQueue mask in the engine's terms: paths (proto or REST form) must start at a field v2's Queue has;
    /// <c>app_engine_routing_override</c> moves under <c>app_engine_http_queue</c>. An empty mask means every v2
    /// field, so an update through v2 never clears what only v2beta3 can set (ttls).
    /// </summary>
    public static FieldMask ToBetaMask(FieldMask? mask)
    {
        var paths = mask is { Paths.Count: > 0 } ? mask.Paths.Select(ToBetaPath) : UpdatableFields.Select(ToBetaPath);
        return new FieldMask { Paths = { paths } };
    }

    private static string ToBetaPath(string path)
    {
        var snake = QueueRules.ToSnakeCase(path);
        var first = snake.Split('.')[0];
        if (!UpdatableFields.Contains(first, StringComparer.Ordinal))
        {
            throw Errors.InvalidArgument("update_mask", $"'{path}' can't be updated through google.cloud.tasks.v2; updatable fields are {string.Join(", ", UpdatableFields)} and the fields below them.");
        }

        return first == "app_engine_routing_override" ? "app_engine_http_queue." + snake : snake;
    }
}
