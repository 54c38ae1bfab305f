using System.Diagnostics;
using System.Reflection;
using Bridge.CloudTasks;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>The emulator's ActivitySource and the attribute names of its dispatch spans.</summary>
internal static class EmulatorDiagnostics
{
    public const string SourceName = CloudTasksEmulatorTelemetry.SourceName;

    public static readonly ActivitySource ActivitySource = new(
        SourceName,
        typeof(EmulatorDiagnostics).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0");

    /// <summary>HTTP client conventions for the request; the task's concepts under the names every Bridge span uses.</summary>
    public static class Tags
    {
        public const string HttpMethod = "http.request.method";
        public const string UrlFull = "url.full";
        public const string HttpStatusCode = "http.response.status_code";
        public const string ErrorType = "error.type";
        public const string Queue = CloudTasksTelemetry.Tags.QueueName;
        public const string Task = CloudTasksTelemetry.Tags.TaskName;
        public const string RetryCount = CloudTasksTelemetry.Tags.RetryCount;
    }
}
