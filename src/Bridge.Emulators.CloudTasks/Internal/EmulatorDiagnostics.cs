using System.Diagnostics;
using System.Reflection;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>The emulator's ActivitySource and the names of its dispatch spans.</summary>
internal static class EmulatorDiagnostics
{
    public const string SourceName = "Bridge.Emulators.CloudTasks";

    public static readonly ActivitySource ActivitySource = new(
        SourceName,
        typeof(EmulatorDiagnostics).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0");

    public static class Tags
    {
        public const string HttpMethod = "http.request.method";
        public const string UrlFull = "url.full";
        public const string HttpStatusCode = "http.response.status_code";
        public const string ErrorType = "error.type";
        public const string Queue = "cloudtasks.queue";
        public const string Task = "cloudtasks.task";
        public const string RetryCount = "cloudtasks.retry_count";
    }
}
