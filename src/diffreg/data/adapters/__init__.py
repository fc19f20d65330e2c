"""One adapter per public dataset: read the layout users have on disk, write our samplesheet
(and the pairs its paper uses). Each module registers itself in `ADAPTERS`; splits and pairings
come from ``experiments/pairs/<dataset>.yaml``, never from code.

=================  ===========================================================================
name               layout read
=================  ===========================================================================
neurite-oasis      <root>/OASIS_OAS1_XXXX_MR1/aligned_{norm,orig,seg4,seg35}.nii.gz
oasis3             <root>/<session>/{brain,aseg}.{nii.gz,mgz} (FreeSurfer outputs, maybe under mri/)
acdc               <root>/{training,testing}/patientXXX/{Info.cfg, patientXXX_frameYY[_gt].nii.gz, _4d.nii.gz}
camus              <root>/patientXXXX/patientXXXX_{2CH,4CH}_{ED,ES}[_gt].{nii.gz,mhd}
echonet            <root>/{FileList.csv, VolumeTracings.csv, Videos/*.avi}
adni               a CSV: subject, t1, pet and/or fa, aseg [, split]
knee               a CSV: subject, modality (dxa|xray), image, labels [, split]
=================  ===========================================================================
"""
from __future__ import annotations

import importlib

from ...registry import Registry

ADAPTERS: Registry = Registry("dataset adapter")

_MODULES = ("neurite_oasis", "oasis3", "acdc", "camus", "echonet", "adni", "knee")


def load_all() -> Registry:
    for m in _MODULES:
        importlib.import_module(f"{__name__}.{m}")
    return ADAPTERS
