using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>The emulator's errors, shaped like the real service's: status code, message, and BadRequest field violations.</summary>
internal static class Errors
{
    public static RpcException InvalidArgument(string field, string description) => new Google.Rpc.Status
    {
        Code = (int)Code.InvalidArgument,
        Message = description,
        Details = { Any.Pack(new BadRequest { FieldViolations = { new BadRequest.Types.FieldViolation { Field = field, Description = description } } }) },
    }.ToRpcException();

    public static RpcException NotFound(string message) => Simple(Code.NotFound, message);

    public static RpcException AlreadyExists(string message) => Simple(Code.AlreadyExists, message);

    public static RpcException FailedPrecondition(string message) => Simple(Code.FailedPrecondition, message);

    public static RpcException Aborted(string message) => Simple(Code.Aborted, message);

    public static RpcException Unavailable(string message) => Simple(Code.Unavailable, message);

    private static RpcException Simple(Code code, string message) => new Google.Rpc.Status { Code = (int)code, Message = message }.ToRpcException();
}
