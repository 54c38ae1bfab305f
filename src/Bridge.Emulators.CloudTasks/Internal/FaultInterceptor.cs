using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// Answers a call with the injected status before the service sees it. JSON transcoding runs the same pipeline, so
/// REST calls fail too, and the error envelope middleware maps the status to HTTP.
/// </summary>
internal sealed class FaultInterceptor(EmulatorFaults faults) : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation) =>
        faults.TakeFailure(context.Method) is { } failure ? throw failure : continuation(request, context);
}
