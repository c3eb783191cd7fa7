"""The chief's gRPC service: the `Hello` call (joining and the lease) and Keras Tuner's oracle
service behind the chief's admission, with the identity every call carries."""

import json
import time

import grpc

from tuning import _kt_compat as kt_compat
from tuning.distributed.book import Refused

SERVICE = "zoo.Cluster"
METADATA = ("worker_id", "session", "fingerprint", "host", "pid")


def encode(value):
    return json.dumps(value).encode()


def metadata_for(identity):
    """A worker's identity as the gRPC metadata its calls carry."""
    return [("zoo-" + key.replace("_", "-"), str(value)) for key, value in identity.items()]


def identity_from(metadata):
    """The identity a call's gRPC metadata carries (None for a missing field)."""
    sent = {key: value for key, value in metadata if key.startswith("zoo-")}
    return {name: sent.get("zoo-" + name.replace("_", "-")) for name in METADATA}


def add_services(server, chief):
    """Add the `Hello` call and the gated oracle service of `chief` to its gRPC `server`."""

    def hello(identity, context):
        worker = _admit(chief, identity, context)
        if identity.get("leaving") and worker.state == "active":  # a local worker retiring
            chief.retire(worker, identity["leaving"])
        return {**chief.info, "state": "finished" if worker.state == "finished" else "running"}

    handler = grpc.unary_unary_rpc_method_handler(hello, request_deserializer=json.loads,
                                                  response_serializer=encode)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Hello": handler}),))
    kt_compat.get_service_grpc().add_OracleServicer_to_server(_OracleGate(chief), server)


def _admit(chief, identity, context):
    try:
        return chief.admit(identity)
    except Refused as error:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))


class _OracleGate:
    """Keras Tuner's `OracleServicer` behind the chief's admission, with three changes: a worker
    asking for a trial while others still run one waits (IDLE) instead of leaving, so a re-queued
    trial finds a taker; IDLE answers are paced; a stale report for a trial that was handed on is
    ignored."""

    def __init__(self, chief):
        self.chief = chief
        self.book = chief.book
        self.oracle = chief.oracle
        self.servicer = kt_compat.oracle_servicer(chief.oracle)

    def _admit(self, context):
        return _admit(self.chief, identity_from(context.invocation_metadata()), context)

    def GetSpace(self, request, context):
        self._admit(context)
        return self.servicer.GetSpace(request, context)

    def UpdateSpace(self, request, context):
        self._admit(context)
        return self.servicer.UpdateSpace(request, context)

    def UpdateTrial(self, request, context):
        self._admit(context)
        return self.servicer.UpdateTrial(request, context)

    def GetTrial(self, request, context):
        self._admit(context)
        return self.servicer.GetTrial(request, context)

    def GetBestTrials(self, request, context):
        self._admit(context)
        return self.servicer.GetBestTrials(request, context)

    def CreateTrial(self, request, context):
        from keras_tuner.engine.trial import Trial, TrialStatus

        worker = self._admit(context)
        tuner_id = request.tuner_id
        with kt_compat.holding(self.oracle):
            if self.book.failure is not None:
                trial = Trial(self.oracle.get_space(), status=TrialStatus.STOPPED)
            else:
                trial = self.oracle.create_trial(tuner_id)
            wait = 0.0
            if trial.status == TrialStatus.STOPPED:
                others = [t for owner, t in kt_compat.ongoing(self.oracle).items() if owner != tuner_id]
                if others and self.book.failure is None:
                    kt_compat.add_tuner(self.oracle, tuner_id)  # stays: one of the others may be lost
                    trial = Trial(self.oracle.get_space(), status=TrialStatus.IDLE)
                    wait = 1.0
                else:
                    kt_compat.drop_tuner(self.oracle, tuner_id)
                    self.book.stopping = True
                    self.book.finish(worker)
            elif trial.status == TrialStatus.IDLE:  # Hyperband waiting for a round's results
                wait = 0.5
            elif trial.status == TrialStatus.RUNNING:
                self.chief.trial_started(trial.trial_id, worker.worker_id)
        time.sleep(wait)  # Keras Tuner's worker asks again at once after IDLE
        return kt_compat.get_service().CreateTrialResponse(trial=trial.to_proto())

    def EndTrial(self, request, context):
        from keras_tuner.engine.trial import Trial

        worker = self._admit(context)
        trial = Trial.from_proto(request.trial)
        with kt_compat.holding(self.oracle):
            owner = next((tid for tid, t in kt_compat.ongoing(self.oracle).items()
                          if t.trial_id == trial.trial_id), None)
            # an unowned trial in the retry queue was presumed lost, but it finished after all
            presumed_lost = owner is None and kt_compat.unqueue(self.oracle, trial.trial_id)
            if owner != worker.worker_id and not presumed_lost:
                return kt_compat.get_service().EndTrialResponse()  # stale: the trial was handed on
            self.book.end_trial(trial)
            ended = self.oracle.trials[trial.trial_id]
        self.chief.trial_ended(ended)
        return kt_compat.get_service().EndTrialResponse()
