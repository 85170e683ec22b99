import CartridgeKernels
import Foundation
import Logging

OpenBLASSetup.reexecWithFastKernelsIfNeeded()
LoggingSystem.bootstrap { label in
    var h = StreamLogHandler.standardError(label: label)
    h.logLevel = ProcessInfo.processInfo.environment["CARTRIDGES_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    return h
}
CompileCommand.main()
