using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using HttpMethod = Bridge.CloudTasks.V2Beta3.HttpMethod;
using HttpRequest = Bridge.CloudTasks.V2Beta3.HttpRequest;
using Task = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>Task limits and checks of the real service.</summary>
internal static class TaskRules
{
    /// <summary>Largest task the service accepts, as recorded from it ("Task size too large").</summary>
    public const int MaxTaskSizeBytes = 1_048_569;
    public const int MaxUrlLength = 2083;
    public static readonly TimeSpan MaxScheduleAhead = TimeSpan.FromDays(30);
    public static readonly TimeSpan MinDispatchDeadline = TimeSpan.FromSeconds(15);
    public static readonly TimeSpan MaxDispatchDeadline = TimeSpan.FromMinutes(30);
    public static readonly TimeSpan DefaultDispatchDeadline = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Headers the service computes or reserves; a task's own values for them are not sent. (Authorization is sent
    /// unless the task has an OIDC or OAuth token, which replaces it.)
    /// </summary>
    public static bool IsReservedHeader(string name) =>
        name.Equals("Host", StringComparison.OrdinalIgnoreCase)
        || name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)
        || name.Equals("User-Agent", StringComparison.OrdinalIgnoreCase)
        || name.StartsWith("X-Google-", StringComparison.OrdinalIgnoreCase)
        || name.StartsWith("X-AppEngine-", StringComparison.OrdinalIgnoreCase)
        || name.StartsWith("X-CloudTasks-", StringComparison.OrdinalIgnoreCase);

    public static bool IsEmail(string? value) =>
        !string.IsNullOrWhiteSpace(value) && value.IndexOf('@', StringComparison.Ordinal) is > 0 && value.IndexOf('@', StringComparison.Ordinal) < value.Length - 1;

    /// <summary>A 19-digit id, like the ones the service generates.</summary>
    public static string NewTaskId() =>
        ((BitConverter.ToUInt64(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8)) % 9_000_000_000_000_000_000UL) + 1_000_000_000_000_000_000UL).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Checks a CreateTask's task and returns it as stored (output fields reset, defaults filled).</summary>
    public static Task PrepareNewTask(Task input, Queue queue, DateTimeOffset now)
    {
        var size = input.CalculateSize();
        if (size > MaxTaskSizeBytes)
        {
            throw Errors.InvalidArgument("task", $"Task size too large: {size} bytes; the maximum is {MaxTaskSizeBytes} bytes.");
        }

        var task = input.Clone();
        task.CreateTime = Timestamp.FromDateTimeOffset(now);
        task.DispatchCount = 0;
        task.ResponseCount = 0;
        task.FirstAttempt = null;
        task.LastAttempt = null;
        task.View = Task.Types.View.Unspecified;

        if (queue.Type == Queue.Types.Type.Pull)
        {
            if (task.PayloadTypeCase != Task.PayloadTypeOneofCase.PullMessage)
            {
                throw Errors.InvalidArgument("task.pull_message", "Tasks in a pull queue must have a pull_message.");
            }
        }
        else
        {
            switch (task.PayloadTypeCase)
            {
                case Task.PayloadTypeOneofCase.HttpRequest:
                    ValidateHttpRequest(task.HttpRequest, queue);
                    break;
                case Task.PayloadTypeOneofCase.AppEngineHttpRequest:
                    ValidateAppEngineRequest(task.AppEngineHttpRequest);
                    break;
                case Task.PayloadTypeOneofCase.PullMessage:
                    throw Errors.InvalidArgument("task.pull_message", "A push queue can't take a pull_message task; set http_request or app_engine_http_request.");
                default:
                    throw Errors.InvalidArgument("task.http_request", "The task has no payload: set http_request (or app_engine_http_request).");
            }
        }

        if (task.ScheduleTime is { } schedule)
        {
            var at = schedule.ToDateTimeOffset();
            if (at > now + MaxScheduleAhead)
            {
                throw Errors.InvalidArgument("task.schedule_time", $"The task's schedule time {at:O} is more than 720h in the future; it must be no more than 720h in the future.");
            }

            if (at < now)
            {
                task.ScheduleTime = Timestamp.FromDateTimeOffset(now);
            }
        }
        else
        {
            task.ScheduleTime = Timestamp.FromDateTimeOffset(now);
        }

        if (task.DispatchDeadline is { } deadline)
        {
            var d = deadline.ToTimeSpan();
            if (d < MinDispatchDeadline || d > MaxDispatchDeadline)
            {
                throw Errors.InvalidArgument("task.dispatch_deadline", $"dispatch_deadline must be between 15s and 30m; got {d}.");
            }
        }
        else
        {
            task.DispatchDeadline = Duration.FromTimeSpan(DefaultDispatchDeadline);
        }

        if (task.RetryConfig is { } retry)
        {
            QueueRules.ValidateRetry(retry, "task.retry_config.");

            // Checked with the queue's values filled in, so the config it will run with is valid, not just the given part.
            QueueRules.ValidateRetry(QueueRules.EffectiveRetry(retry, queue.RetryConfig), "task.retry_config.");
        }

        return task;
    }

    /// <summary>The task as a response shows it: BASIC (the default) leaves out bodies.</summary>
    public static Task View(Task stored, Task.Types.View requested)
    {
        var view = requested == Task.Types.View.Full ? Task.Types.View.Full : Task.Types.View.Basic;
        var copy = stored.Clone();
        copy.View = view;
        if (view == Task.Types.View.Basic)
        {
            if (copy.HttpRequest is { } http)
            {
                http.Body = ByteString.Empty;
            }

            if (copy.AppEngineHttpRequest is { } appEngine)
            {
                appEngine.Body = ByteString.Empty;
            }

            if (copy.PullMessage is { } pull)
            {
                pull.Payload = ByteString.Empty;
            }
        }

        return copy;
    }

    private static void ValidateHttpRequest(HttpRequest request, Queue queue)
    {
        var hasOverrideHost = queue.HttpTarget?.UriOverride?.HasHost == true;
        if (string.IsNullOrEmpty(request.Url) && !hasOverrideHost)
        {
            throw Errors.InvalidArgument("task.http_request.url", "http_request.url is required.");
        }

        if (!string.IsNullOrEmpty(request.Url))
        {
            if (request.Url.Length > MaxUrlLength)
            {
                throw Errors.InvalidArgument("task.http_request.url", $"http_request.url is {request.Url.Length} characters long; at most {MaxUrlLength} are allowed.");
            }

            if (!Uri.TryCreate(request.Url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || string.IsNullOrEmpty(uri.Host))
            {
                throw Errors.InvalidArgument("task.http_request.url", $"http_request.url '{Shorten(request.Url)}' must be an absolute http or https URL.");
            }
        }

        if (request.HttpMethod == HttpMethod.Unspecified)
        {
            request.HttpMethod = HttpMethod.Post;
        }

        if (!request.Body.IsEmpty && request.HttpMethod is not (HttpMethod.Post or HttpMethod.Put or HttpMethod.Patch))
        {
            throw Errors.InvalidArgument("task.http_request.body", $"A body is only allowed with POST, PUT or PATCH; the method is {request.HttpMethod}.");
        }

        foreach (var (key, value) in request.Headers)
        {
            ValidateHeader(key, value, "task.http_request.headers");
        }

        switch (request.AuthorizationHeaderCase)
        {
            case HttpRequest.AuthorizationHeaderOneofCase.OidcToken when !IsEmail(request.OidcToken.ServiceAccountEmail):
                throw Errors.InvalidArgument("task.http_request.oidc_token.service_account_email", "oidc_token.service_account_email must be a service account's email address.");
            case HttpRequest.AuthorizationHeaderOneofCase.OauthToken when !IsEmail(request.OauthToken.ServiceAccountEmail):
                throw Errors.InvalidArgument("task.http_request.oauth_token.service_account_email", "oauth_token.service_account_email must be a service account's email address.");
        }
    }

    /// <summary>
    /// A header the dispatch can send: a token name, and a value without CR, LF or NUL (which would split the
    /// request or fail every attempt).
    /// </summary>
    public static void ValidateHeader(string key, string value, string field)
    {
        if (key.Length == 0 || key.Any(c => c <= ' ' || c >= 127 || c == ':'))
        {
            throw Errors.InvalidArgument(field, $"'{Shorten(key)}' is not a valid header name.");
        }

        if (value.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0)
        {
            throw Errors.InvalidArgument(field, $"The value of header '{Shorten(key)}' contains CR, LF or NUL.");
        }
    }

    private static void ValidateAppEngineRequest(AppEngineHttpRequest request)
    {
        foreach (var (key, value) in request.Headers)
        {
            ValidateHeader(key, value, "task.app_engine_http_request.headers");
        }

        if (request.HttpMethod == HttpMethod.Unspecified)
        {
            request.HttpMethod = HttpMethod.Post;
        }

        if (string.IsNullOrEmpty(request.RelativeUri))
        {
            request.RelativeUri = "/";
        }
        else if (!request.RelativeUri.StartsWith('/'))
        {
            throw Errors.InvalidArgument("task.app_engine_http_request.relative_uri", "relative_uri must start with '/'.");
        }

        if (!request.Body.IsEmpty && request.HttpMethod is not (HttpMethod.Post or HttpMethod.Put or HttpMethod.Patch))
        {
            throw Errors.InvalidArgument("task.app_engine_http_request.body", $"A body is only allowed with POST, PUT or PATCH; the method is {request.HttpMethod}.");
        }
    }

    private static string Shorten(string value) => value.Length <= 100 ? value : string.Concat(value.AsSpan(0, 97), "...");
}
